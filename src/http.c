#include "internal.h"

void ps_http_open(lua_State *L) { (void)L; }
