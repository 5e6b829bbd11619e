#include "internal.h"

void ps_server_open(lua_State *L) { (void)L; }
