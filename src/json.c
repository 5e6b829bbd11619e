#include "internal.h"

void ps_json_open(lua_State *L) { (void)L; }
int ps_json_push(lua_State *L, const char *s, size_t n, char *err, size_t errlen) { (void)L;(void)s;(void)n;(void)err;(void)errlen; return 0; }
void ps_json_pushnull(lua_State *L) { lua_pushlightuserdata(L, NULL); }
int ps_json_isnull(lua_State *L, int idx) { (void)L;(void)idx; return 0; }
