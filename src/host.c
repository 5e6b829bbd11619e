/* The embedding API of include/polysim.h: a Lua state running polysim.host, driven from C.
 * All the work is in lua/polysim/host.lua; this file turns C calls into protected calls of
 * the host object's methods and keeps the last error message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "polysim.h"
#include "internal.h"
#include "loop.h"


struct polysim_host {
    lua_State *L;
    int ref;                 /* registry ref of the Lua host object; LUA_NOREF if new failed */
    int fd;
    int has_error;
    int broken;              /* creation failed: every call fails with the creation error */
    polysim_log_fn log;
    void *log_ud;
    int snap_ref;            /* registry ref of the last snapshot table (its strings) */
    polysim_position *snap_pos;
    polysim_order *snap_ord;
    char base_url[512];
    char dash_url[256];
    char err[4096];
};

static void set_error(polysim_host *h, const char *msg) {
    snprintf(h->err, sizeof h->err, "%s", msg ? msg : "(error without a message)");
    h->has_error = 1;
}

/* The error at the top of L after ps_traceback (the core's one message handler, loop.c):
 * a string with its traceback, or an error object, kept as its tostring. */
static void set_lua_error(polysim_host *h, lua_State *L) {
    set_error(h, luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
}

/* ---- polysim.preempt: suspending a callback at the step's deadline ----------------------
 *
 * A strategy task's coroutine gets a count hook (chained with the Lua hook the budget put
 * there, which it calls as debug.sethook's own dispatcher would). When a step's deadline has
 * passed, the hook yields the coroutine with no values (Lua 5.4 lets count hooks yield) and
 * records which thread it was; polysim.loop parks the task and the host resumes it at the
 * next step. Only threads installed here are ever yielded, and only when yieldable. */

static const char HOOKS_KEY = 'h';      /* registry: weak table thread -> Lua hook | true */
static const char PREEMPTED_KEY = 'p';  /* registry: the thread last yielded by the hook */
static const char DEADLINE_KEY = 'd';   /* registry: userdata double, the deadline (< 0: none) */

static double *deadline_slot(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &DEADLINE_KEY);  /* ud|nil */
    double *d = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return d;
}

static void preempt_hook(lua_State *L, lua_Debug *ar) {
    static const char *const names[] = {"call", "return", "line", "count", "tail call"};
    lua_rawgetp(L, LUA_REGISTRYINDEX, &HOOKS_KEY);     /* hooks */
    lua_pushthread(L);                                 /* hooks thread */
    int t = lua_rawget(L, -2);                         /* hooks fn|true|nil */
    if (t == LUA_TNIL) {                               /* not ours (an inherited hook) */
        lua_pop(L, 2);
        return;
    }
    if (t == LUA_TFUNCTION) {
        lua_pushstring(L, names[ar->event]);
        if (ar->currentline >= 0) lua_pushinteger(L, ar->currentline);
        else lua_pushnil(L);                           /* hooks fn event line */
        lua_call(L, 2, 0);                             /* hooks */
    } else {
        lua_pop(L, 1);                                 /* hooks */
    }
    lua_pop(L, 1);                                     /* (as before) */
    if (ar->event != LUA_HOOKCOUNT) return;
    double *d = deadline_slot(L);
    if (!d || *d < 0 || ps_monotime() < *d || !lua_isyieldable(L)) return;
    lua_pushthread(L);                                 /* thread */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PREEMPTED_KEY); /* (as before) */
    lua_yield(L, 0);
}

/* install(co, luahook|nil, mask, count): our hook on co, chained with luahook. */
static int preempt_install(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co != NULL, 1, "coroutine expected");
    const char *smask = luaL_optstring(L, 3, "");
    int count = (int)luaL_optinteger(L, 4, 0);
    int mask = LUA_MASKCOUNT;
    if (strchr(smask, 'c')) mask |= LUA_MASKCALL;
    if (strchr(smask, 'r')) mask |= LUA_MASKRET;
    if (strchr(smask, 'l')) mask |= LUA_MASKLINE;
    if (count <= 0) count = 1000;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &HOOKS_KEY);     /* ... hooks */
    lua_pushvalue(L, 1);                               /* ... hooks co */
    if (lua_isfunction(L, 2)) lua_pushvalue(L, 2);
    else lua_pushboolean(L, 1);                        /* ... hooks co fn|true */
    lua_rawset(L, -3);                                 /* ... hooks */
    lua_pop(L, 1);
    lua_sethook(co, preempt_hook, mask, count);
    return 0;
}

/* set_deadline(seconds from now | nil): the running step's deadline. */
static int preempt_set_deadline(lua_State *L) {
    double *d = deadline_slot(L);
    if (d) *d = lua_isnoneornil(L, 1) ? -1.0 : ps_monotime() + luaL_checknumber(L, 1);
    return 0;
}

/* take() -> the thread the hook yielded last (and forgets it), or nil. */
static int preempt_take(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PREEMPTED_KEY); /* thread|nil */
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PREEMPTED_KEY); /* thread|nil */
    return 1;
}

static int luaopen_preempt(lua_State *L) {
    lua_newtable(L);                                   /* hooks */
    lua_createtable(L, 0, 1);                          /* hooks mt */
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);                           /* hooks */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &HOOKS_KEY);     /* (empty) */
    double *d = lua_newuserdatauv(L, sizeof(double), 0);
    *d = -1.0;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &DEADLINE_KEY);
    static const luaL_Reg fns[] = {
        {"install", preempt_install}, {"set_deadline", preempt_set_deadline}, {"take", preempt_take}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/* ---- the Lua directory: an option, $POLYSIM_LUA_DIR, or found beside the executable ------ */

static int is_dir_with_polysim(const char *dir) {
    char p[4400];
    if ((size_t)snprintf(p, sizeof p, "%s/polysim/host.lua", dir) >= sizeof p) return 0;
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* Relative to the running executable: PREFIX/bin -> PREFIX/share/lua/5.4, and the build
 * tree's build/bin or build/tests -> lua/. Writes into buf; NULL when none is there. */
static const char *lua_dir_near_exe(char *buf, size_t size) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;                                        /* exe = the executable's directory */
    static const char *const rel[] = {"/../share/lua/" LUA_VERSION_MAJOR "." LUA_VERSION_MINOR,
                                      "/../../lua", "/../lua", NULL};
    for (int i = 0; rel[i]; i++) {
        if ((size_t)snprintf(buf, size, "%s%s", exe, rel[i]) >= size) continue;
        if (is_dir_with_polysim(buf)) return buf;
    }
    return NULL;
}

PS_EXPORT void polysim_openlibs(lua_State *L, const char *lua_dir) {
    char found[4200];
    if (!lua_dir || !*lua_dir) {
        const char *env = getenv("POLYSIM_LUA_DIR");
        lua_dir = env && *env ? env : lua_dir_near_exe(found, sizeof found);
    }
#ifdef POLYSIM_LUADIR
    if (!lua_dir && POLYSIM_LUADIR[0]) lua_dir = POLYSIM_LUADIR; /* an install prefix, never the build's */
#endif
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* preload */
    lua_pushcfunction(L, luaopen_polysim_core);
    lua_setfield(L, -2, "polysim.core");
    lua_pushcfunction(L, luaopen_preempt);
    lua_setfield(L, -2, "polysim.preempt");
    lua_pop(L, 1);                                     /* (empty) */
    if (!lua_dir) return;                              /* package.path as LUA_PATH has it */
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
    lua_createtable(L, 0, 16);                         /* host new opts */
    set_str(L, "api_key", o->api_key);
    set_str(L, "base_url", o->base_url ? o->base_url : getenv("POLYSIM_BASE_URL"));
    if (o->local_exchange > 0) lua_pushboolean(L, 1);
    else if (o->local_exchange < 0) lua_pushboolean(L, 0);
    else lua_pushliteral(L, "auto");
    lua_setfield(L, -2, "local_exchange");
    lua_pushinteger(L, o->seed ? (lua_Integer)o->seed : 1);
    lua_setfield(L, -2, "seed");
    if (o->tick_s < 0) lua_pushboolean(L, 0);         /* frozen prices, like --tick 0 */
    else lua_pushnumber(L, o->tick_s > 0 ? o->tick_s : 0.5);
    lua_setfield(L, -2, "tick");
    if (o->budget_s < 0) lua_pushboolean(L, 0);
    else lua_pushnumber(L, o->budget_s > 0 ? o->budget_s : 0.5);
    lua_setfield(L, -2, "budget");
    lua_pushboolean(L, !o->no_reload);
    lua_setfield(L, -2, "hot_reload");
    if (o->status) lua_pushliteral(L, "plain");
    else lua_pushboolean(L, 0);
    lua_setfield(L, -2, "status");
    if (o->status_s > 0) set_num(L, "status_interval", o->status_s);
    if (o->dashboard) {
        lua_createtable(L, 0, 2);                      /* host new opts dash */
        if (o->dashboard_port > 65535) return luaL_error(L, "dashboard_port must be 0..65535");
        lua_pushinteger(L, (lua_Integer)o->dashboard_port);
        lua_setfield(L, -2, "port");
        lua_pushboolean(L, o->dashboard_control != 0);
        lua_setfield(L, -2, "control");
        lua_setfield(L, -2, "dashboard");              /* host new opts */
    }
    set_str(L, "log_level", o->log_level);
    set_str(L, "log_file", o->log_file);
    if (o->log_json) set_str(L, "log_format", "json");
    if (o->quiet) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "quiet");
    }
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
    h->snap_ref = LUA_NOREF;
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
    lua_pushcfunction(L, ps_traceback);                /* tb */
    lua_pushcfunction(L, setup);                       /* tb setup */
    lua_pushlightuserdata(L, h);
    lua_pushlightuserdata(L, (void *)opts);            /* tb setup h opts */
    if (lua_pcall(L, 2, 1, 1) != LUA_OK) {             /* tb obj|err */
        set_lua_error(h, L);
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
    lua_pushcfunction(L, ps_traceback);                /* tb */
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
        set_lua_error(h, L);
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

/* ---- the snapshot ---------------------------------------------------------------------- */

static const char *sfield(lua_State *L, int idx, const char *key) {
    lua_getfield(L, idx, key);                         /* ... v */
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);                                     /* ... (v stays alive in the table) */
    return v;
}

static int ifield(lua_State *L, int idx, const char *key) {
    lua_getfield(L, idx, key);
    int v = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Under lua_pcall: (h, out, snap) -> fills out from the table snap. Arrays are kept in h, so
 * nothing leaks when a call raises. */
static int fill_snapshot(lua_State *L) {
    polysim_host *h = lua_touserdata(L, 1);
    polysim_snapshot *out = lua_touserdata(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    out->name = sfield(L, 3, "name");
    out->version = ifield(L, 3, "version");
    out->running = ifield(L, 3, "running");
    out->cash = sfield(L, 3, "cash");
    out->equity = sfield(L, 3, "equity");
    out->pnl = sfield(L, 3, "pnl");
    out->own_pnl = sfield(L, 3, "own_pnl");
    out->own_placed = ifield(L, 3, "own_placed");
    out->own_filled = ifield(L, 3, "own_filled");
    out->errors = ifield(L, 3, "errors");
    out->reloads = ifield(L, 3, "reloads");
    out->last_error = sfield(L, 3, "last_error");
    lua_getfield(L, 3, "positions");                   /* h out snap positions */
    int n = lua_istable(L, 4) ? (int)lua_rawlen(L, 4) : 0;
    free(h->snap_pos);
    h->snap_pos = n ? calloc((size_t)n, sizeof *h->snap_pos) : NULL;
    if (n && !h->snap_pos) return luaL_error(L, "out of memory");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 4, i + 1);                      /* h out snap positions row */
        polysim_position *p = &h->snap_pos[i];
        if (lua_istable(L, 5)) {
            p->market_id = sfield(L, 5, "market_id");
            p->outcome = sfield(L, 5, "outcome");
            p->quantity = sfield(L, 5, "quantity");
            p->avg_price = sfield(L, 5, "avg_price");
            p->mark = sfield(L, 5, "mark");
            p->unrealized = sfield(L, 5, "unrealized");
        }
        lua_pop(L, 1);                                 /* h out snap positions */
    }
    out->n_positions = n;
    out->positions = h->snap_pos;
    lua_pop(L, 1);                                     /* h out snap */
    lua_getfield(L, 3, "open_orders");                 /* h out snap orders */
    n = lua_istable(L, 4) ? (int)lua_rawlen(L, 4) : 0;
    free(h->snap_ord);
    h->snap_ord = n ? calloc((size_t)n, sizeof *h->snap_ord) : NULL;
    if (n && !h->snap_ord) return luaL_error(L, "out of memory");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 4, i + 1);                      /* h out snap orders row */
        polysim_order *o = &h->snap_ord[i];
        if (lua_istable(L, 5)) {
            o->order_id = sfield(L, 5, "order_id");
            o->client_order_id = sfield(L, 5, "client_order_id");
            o->market_id = sfield(L, 5, "market_id");
            o->side = sfield(L, 5, "side");
            o->outcome = sfield(L, 5, "outcome");
            o->price = sfield(L, 5, "price");
            o->quantity = sfield(L, 5, "quantity");
            o->status = sfield(L, 5, "status");
        }
        lua_pop(L, 1);                                 /* h out snap orders */
    }
    out->n_open_orders = n;
    out->open_orders = h->snap_ord;
    return 0;
}

PS_EXPORT int polysim_host_snapshot(polysim_host *h, polysim_snapshot *out) {
    if (!out) {
        if (h) set_error(h, "polysim_host_snapshot: out is NULL");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (!begin(h, "c_snapshot")) return -1;
    lua_State *L = h->L;
    if (finish(h, 0, 1) != 0) return -1;               /* tb snap */
    if (h->snap_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, h->snap_ref);
    lua_pushvalue(L, 2);                               /* tb snap snap */
    h->snap_ref = luaL_ref(L, LUA_REGISTRYINDEX);      /* tb snap: anchored, its strings too */
    lua_pushcfunction(L, fill_snapshot);               /* tb snap fill */
    lua_pushlightuserdata(L, h);
    lua_pushlightuserdata(L, out);
    lua_pushvalue(L, 2);                               /* tb snap fill h out snap */
    if (lua_pcall(L, 3, 0, 1) != LUA_OK) {             /* tb snap err */
        set_lua_error(h, L);
        memset(out, 0, sizeof *out);
        lua_settop(L, 0);
        return -1;
    }
    lua_settop(L, 0);
    return 0;
}

PS_EXPORT const char *polysim_host_error(const polysim_host *h) {
    if (!h) return "no host (out of memory)";
    return h->has_error ? h->err : NULL;
}

PS_EXPORT const char *polysim_host_base_url(const polysim_host *h) {
    return h && h->base_url[0] ? h->base_url : NULL;
}

PS_EXPORT const char *polysim_host_dashboard_url(polysim_host *h) {
    if (!h || h->broken || h->ref == LUA_NOREF) return NULL;
    lua_State *L = h->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);         /* obj */
    lua_getfield(L, -1, "dashboard_url");              /* obj url|nil */
    const char *url = NULL;
    if (lua_type(L, -1) == LUA_TSTRING) {
        snprintf(h->dash_url, sizeof h->dash_url, "%s", lua_tostring(L, -1));
        url = h->dash_url;
    }
    lua_settop(L, top);                                /* (as before) */
    return url;
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
        if (h->snap_ref != LUA_NOREF) luaL_unref(h->L, LUA_REGISTRYINDEX, h->snap_ref);
        h->snap_ref = LUA_NOREF;
        lua_close(h->L);
        h->L = NULL;
    }
    free(h->snap_pos);
    free(h->snap_ord);
    free(h);
}
