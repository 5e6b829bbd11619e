#include "internal.h"

void ps_errors_open(lua_State *L) { (void)L; }
