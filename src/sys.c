#include "internal.h"

void ps_sys_open(lua_State *L) { (void)L; }
