/* luaopen_polysim_core: one table, filled by each concern's opener in turn. */
#include "internal.h"

static void (*const openers[])(lua_State *L) = {
    ps_json_open, ps_decimal_open, ps_errors_open, ps_loop_open,
    ps_http_open, ps_server_open,  ps_ws_open,     ps_sys_open, ps_fswatch_open,
    ps_wsconn_open,
};

PS_EXPORT int luaopen_polysim_core(lua_State *L) {
    lua_newtable(L);                                   /* core */
    for (size_t i = 0; i < sizeof openers / sizeof openers[0]; i++)
        openers[i](L);                                 /* core (unchanged) */
    lua_pushliteral(L, POLYSIM_VERSION);
    lua_setfield(L, -2, "VERSION");                    /* core */
    return 1;
}
