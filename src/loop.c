#include "internal.h"

void ps_loop_open(lua_State *L) { (void)L; }
