/* The embedding API of include/polysim.h: a Lua state running polysim.host, driven from C.
 * All the work is in lua/polysim/host.lua; this file turns C calls into protected calls of
 * the host object's methods and keeps the last error message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "polysim.h"
#include "internal.h"

#ifndef POLYSIM_LUADIR
#define POLYSIM_LUADIR "/usr/local/share/lua/5.4"
#endif

struct polysim_host {
    lua_State *L;
    int ref;                 /* registry ref of the Lua host object; LUA_NOREF if new failed */
    int fd;
    int has_error;
    int broken;              /* creation failed: every call fails with the creation error */
    polysim_log_fn log;
    void *log_ud;
    char base_url[512];
    char err[4096];
};

static void set_error(polysim_host *h, const char *msg) {
    snprintf(h->err, sizeof h->err, "%s", msg ? msg : "(error without a message)");
    h->has_error = 1;
}

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

PS_EXPORT void polysim_openlibs(lua_State *L, const char *lua_dir) {
    if (!lua_dir) lua_dir = POLYSIM_LUADIR;
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* preload */
    lua_pushcfunction(L, luaopen_polysim_core);
    lua_setfield(L, -2, "polysim.core");
    lua_pop(L, 1);                                     /* (empty) */
    /* Our Lua files come first so an older installed copy never shadows them. */
    lua_getglobal(L, "package");                       /* package */
    lua_getfield(L, -1, "path");                       /* package path */
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_dir, lua_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");                       /* package path */
    lua_pop(L, 2);                                     /* (empty) */
}

/* ---- log lines to the embedding program --------------------------------------------- */

static int log_bridge(lua_State *L) {
    polysim_host *h = lua_touserdata(L, lua_upvalueindex(1));
    const char *line = luaL_checkstring(L, 1);
    const char *level = luaL_optstring(L, 2, "info");
    int lvl = POLYSIM_LOG_INFO;
    if (strcmp(level, "debug") == 0) lvl = POLYSIM_LOG_DEBUG;
    else if (strcmp(level, "warn") == 0) lvl = POLYSIM_LOG_WARN;
    else if (strcmp(level, "error") == 0) lvl = POLYSIM_LOG_ERROR;
    if (h->log) h->log(h->log_ud, lvl, line);
    return 0;
}

/* ---- creation ----------------------------------------------------------------------- */

static void set_str(lua_State *L, const char *key, const char *v) {
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, key);
}

static void set_num(lua_State *L, const char *key, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

/* Runs under lua_pcall: (h, opts) -> host object left at the top. */
static int setup(lua_State *L) {
    polysim_host *h = lua_touserdata(L, 1);
    const polysim_host_options *o = lua_touserdata(L, 2);
    lua_settop(L, 0);
    const char *dir = o->lua_dir ? o->lua_dir : getenv("POLYSIM_LUA_DIR");
    polysim_openlibs(L, dir && *dir ? dir : NULL);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "polysim.host");
    lua_call(L, 1, 1);                                 /* host */
    lua_getfield(L, -1, "new");                        /* host new */
    lua_createtable(L, 0, 12);                         /* host new opts */
    set_str(L, "api_key", o->api_key);
    set_str(L, "base_url", o->base_url ? o->base_url : getenv("POLYSIM_BASE_URL"));
    if (o->local_exchange > 0) lua_pushboolean(L, 1);
    else if (o->local_exchange < 0) lua_pushboolean(L, 0);
    else lua_pushliteral(L, "auto");
    lua_setfield(L, -2, "local_exchange");
    lua_pushinteger(L, o->seed ? (lua_Integer)o->seed : 1);
    lua_setfield(L, -2, "seed");
    set_num(L, "tick", o->tick_s > 0 ? o->tick_s : 0.5);
    if (o->budget_s < 0) lua_pushboolean(L, 0);
    else lua_pushnumber(L, o->budget_s > 0 ? o->budget_s : 0.5);
    lua_setfield(L, -2, "budget");
    lua_pushboolean(L, !o->no_reload);
    lua_setfield(L, -2, "hot_reload");
    if (o->status) lua_pushliteral(L, "plain");
    else lua_pushboolean(L, 0);
    lua_setfield(L, -2, "status");
    if (o->status_s > 0) set_num(L, "status_interval", o->status_s);
    if (o->log) {
        lua_pushlightuserdata(L, h);
        lua_pushcclosure(L, log_bridge, 1);
        lua_setfield(L, -2, "log_sink");
    }                                                  /* host new opts */
    lua_call(L, 1, 2);                                 /* host obj|nil err */
    if (lua_isnil(L, -2)) return lua_error(L);         /* raises err */
    lua_pop(L, 1);                                     /* host obj */
    return 1;
}

PS_EXPORT polysim_host *polysim_host_new(const polysim_host_options *opts) {
    polysim_host_options defaults;
    memset(&defaults, 0, sizeof defaults);
    if (!opts) opts = &defaults;
    polysim_host *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->ref = LUA_NOREF;
    h->fd = -1;
    h->log = opts->log;
    h->log_ud = opts->log_ud;
    h->L = luaL_newstate();
    if (!h->L) {
        set_error(h, "cannot create a Lua state (out of memory)");
        h->broken = 1;
        return h;
    }
    lua_State *L = h->L;
    lua_pushcfunction(L, traceback);                   /* tb */
    lua_pushcfunction(L, setup);                       /* tb setup */
    lua_pushlightuserdata(L, h);
    lua_pushlightuserdata(L, (void *)opts);            /* tb setup h opts */
    if (lua_pcall(L, 2, 1, 1) != LUA_OK) {             /* tb obj|err */
        set_error(h, lua_tostring(L, -1));
        h->broken = 1;
        lua_settop(L, 0);
        return h;
    }
    h->ref = luaL_ref(L, LUA_REGISTRYINDEX);           /* tb */
    lua_settop(L, 0);                                  /* (empty) */
    /* fd and base URL never change: read them once. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);         /* obj */
    lua_getfield(L, -1, "base_url");                   /* obj url */
    if (lua_type(L, -1) == LUA_TSTRING) snprintf(h->base_url, sizeof h->base_url, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);                                     /* obj */
    lua_getfield(L, -1, "fd");                         /* obj fd_method */
    lua_pushvalue(L, -2);                              /* obj fd_method obj */
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isinteger(L, -1)) h->fd = (int)lua_tointeger(L, -1);
    lua_settop(L, 0);                                  /* (empty) */
    return h;
}

/* ---- calling the host object's methods ------------------------------------------------ */

/* Pushes tb, obj[method], obj; returns the index of tb (the base), or 0 when broken. */
static int begin(polysim_host *h, const char *method) {
    if (!h || h->broken) return 0;
    h->has_error = 0;
    lua_State *L = h->L;
    lua_settop(L, 0);
    lua_pushcfunction(L, traceback);                   /* tb */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);         /* tb obj */
    lua_getfield(L, -1, method);                       /* tb obj fn */
    lua_insert(L, -2);                                 /* tb fn obj */
    return 1;
}

/* Calls the function at base+1 with obj and nargs more arguments; results stay on the
 * stack from index 2. Returns 0, or -1 with the error kept. */
static int finish(polysim_host *h, int nargs, int nresults) {
    lua_State *L = h->L;
    if (lua_pcall(L, 1 + nargs, nresults, 1) != LUA_OK) { /* tb err */
        set_error(h, lua_tostring(L, -1));
        lua_settop(L, 0);
        return -1;
    }                                                  /* tb results... */
    return 0;
}

PS_EXPORT int polysim_host_load(polysim_host *h, const char *path) {
    if (!path) {
        if (h) set_error(h, "polysim_host_load: path is NULL");
        return -1;
    }
    if (!begin(h, "load")) return -1;
    lua_State *L = h->L;
    lua_pushstring(L, path);                           /* tb fn obj path */
    if (finish(h, 1, 2) != 0) return -1;               /* tb ok|nil err */
    int rc = 0;
    if (!lua_toboolean(L, 2)) {
        set_error(h, lua_tostring(L, 3));
        rc = -1;
    }
    lua_settop(L, 0);
    return rc;
}

PS_EXPORT int polysim_host_step(polysim_host *h, int timeout_ms) {
    if (!begin(h, "c_step")) return -1;
    lua_State *L = h->L;
    lua_pushnumber(L, timeout_ms < 0 ? -1.0 : (double)timeout_ms / 1000.0); /* tb fn obj t */
    if (finish(h, 1, 2) != 0) return -1;               /* tb code err */
    int rc = (int)lua_tointeger(L, 2);
    if (rc < 0) set_error(h, lua_tostring(L, 3));
    lua_settop(L, 0);
    return rc;
}

PS_EXPORT int polysim_host_fd(const polysim_host *h) {
    return h ? h->fd : -1;
}

PS_EXPORT int polysim_host_timeout_ms(polysim_host *h) {
    if (!begin(h, "timeout")) return -1;
    lua_State *L = h->L;
    if (finish(h, 0, 1) != 0) return -1;               /* tb seconds|nil */
    int ms = -1;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        double s = lua_tonumber(L, 2);
        double m = ceil(s * 1000.0);
        ms = m < 0 ? 0 : m > 2147483647.0 ? 2147483647 : (int)m;
    }
    lua_settop(L, 0);
    return ms;
}

PS_EXPORT int polysim_host_stop(polysim_host *h, const char *reason, int timeout_ms) {
    if (!begin(h, "stop")) return -1;
    lua_State *L = h->L;
    lua_pushstring(L, reason ? reason : "stop");
    lua_pushnumber(L, timeout_ms < 0 ? 15.0 : (double)timeout_ms / 1000.0); /* tb fn obj r t */
    if (finish(h, 2, 1) != 0) return -1;               /* tb stopped */
    int rc = lua_toboolean(L, 2) ? 0 : -1;
    if (rc) set_error(h, "the strategy did not stop in time");
    lua_settop(L, 0);
    return rc;
}

PS_EXPORT const char *polysim_host_error(const polysim_host *h) {
    if (!h) return "no host (out of memory)";
    return h->has_error ? h->err : NULL;
}

PS_EXPORT const char *polysim_host_base_url(const polysim_host *h) {
    return h && h->base_url[0] ? h->base_url : NULL;
}

PS_EXPORT lua_State *polysim_host_lua(polysim_host *h) {
    return h ? h->L : NULL;
}

PS_EXPORT void polysim_host_destroy(polysim_host *h) {
    if (!h) return;
    if (h->L) {
        if (!h->broken && begin(h, "close")) {
            lua_pushnumber(h->L, 2.0);                 /* tb fn obj timeout */
            finish(h, 1, 0);
            lua_settop(h->L, 0);
        }
        if (h->ref != LUA_NOREF) luaL_unref(h->L, LUA_REGISTRYINDEX, h->ref);
        h->ref = LUA_NOREF;
        lua_close(h->L);
        h->L = NULL;
    }
    free(h);
}
