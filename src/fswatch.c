#include "internal.h"

void ps_fswatch_open(lua_State *L) { (void)L; }
