/* luaopen_polysim_core: one table, filled by each concern's opener in turn. */
#include "internal.h"
#include "url.h"

static void (*const openers[])(lua_State *L) = {
    ps_json_open, ps_decimal_open, ps_errors_open, ps_loop_open,
    ps_http_open, ps_server_open,  ps_ws_open,     ps_sys_open, ps_fswatch_open,
    ps_wsconn_open, ps_url_open,
    ps_signals_open, /* sandbox: the SIGINT/SIGTERM watchdog */
    ps_proc_open, ps_fs_open,
    ps_jsonl_open, /* the backtest's recording reader */
};

void ps_newclass(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                 lua_CFunction close, lua_CFunction tostring) {
    luaL_newmetatable(L, name);                        /* mt */
    lua_newtable(L);                                   /* mt methods */
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");                    /* mt */
    const struct { const char *event; lua_CFunction fn; } mm[] = {
        {"__gc", gc}, {"__close", close}, {"__tostring", tostring},
    };
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
        if (!mm[i].fn) continue;
        lua_pushcfunction(L, mm[i].fn);
        lua_setfield(L, -2, mm[i].event);              /* mt */
    }
    lua_pop(L, 1);                                     /* (empty) */
}

PS_EXPORT int luaopen_polysim_core(lua_State *L) {
    lua_newtable(L);                                   /* core */
    for (size_t i = 0; i < sizeof openers / sizeof openers[0]; i++)
        openers[i](L);                                 /* core (unchanged) */
    lua_pushliteral(L, POLYSIM_VERSION);
    lua_setfield(L, -2, "VERSION");                    /* core */
    return 1;
}
