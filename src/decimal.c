#include "internal.h"

void ps_decimal_open(lua_State *L) { (void)L; }
