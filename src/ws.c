#include "internal.h"

void ps_ws_open(lua_State *L) { (void)L; }
