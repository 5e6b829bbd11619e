/* One epoll loop per Lua state. It drives curl's multi handle through its socket and timer
 * callbacks, libmicrohttpd through a ps_source, and Lua-level fd watches and timers. The
 * epoll fd itself is what an embedding program polls. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "loop.h"

#define LOOP_MT "polysim.Loop"
#define MAX_EVENTS 64

enum { W_CURL, W_C };

struct ps_watch {
    int kind;
    int fd;
    int dead;
    uint32_t events;
    ps_io_cb cb;             /* W_C */
    void *ud;
    struct ps_watch *next_dead;
};

typedef struct {
    double due;
    lua_Integer id;
} ps_timer;

struct ps_loop {
    int epfd;
    CURLM *multi;
    double curl_due;         /* < 0: curl wants no timer */
    ps_timer *timers;        /* binary min-heap on due */
    size_t ntimers, captimers;
    lua_Integer next_id;
    ps_watch *graveyard;     /* freed at the end of a step: events may still name them */
    ps_source *sources;
    lua_State *L;            /* valid during step() */
    int depth;
    int in_curl;
    int closed;
};

static char loop_key;        /* registry: the state's loop userdata */

double ps_monotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- watches ------------------------------------------------------------------------- */

static ps_watch *watch_new(ps_loop *loop, int kind, int fd, uint32_t events) {
    ps_watch *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->kind = kind;
    w->fd = fd;
    w->events = events;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        if (errno != EEXIST || epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
            free(w);
            return NULL;
        }
    }
    return w;
}

ps_watch *ps_loop_watch(ps_loop *loop, int fd, uint32_t events, ps_io_cb cb, void *ud) {
    ps_watch *w = watch_new(loop, W_C, fd, events);
    if (w) {
        w->cb = cb;
        w->ud = ud;
    }
    return w;
}

void ps_loop_watch_events(ps_loop *loop, ps_watch *w, uint32_t events) {
    if (w->dead || w->events == events) return;
    w->events = events;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void ps_loop_unwatch(ps_loop *loop, ps_watch *w) {
    if (!w || w->dead) return;
    /* The fd may already be closed (curl closes before it tells us): ignore EBADF. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->dead = 1;
    w->next_dead = loop->graveyard;
    loop->graveyard = w;
}

static void bury(ps_loop *loop) {
    while (loop->graveyard) {
        ps_watch *w = loop->graveyard;
        loop->graveyard = w->next_dead;
        free(w);
    }
}

void ps_loop_add_source(ps_loop *loop, ps_source *src) {
    src->next = loop->sources;
    loop->sources = src;
}

void ps_loop_remove_source(ps_loop *loop, ps_source *src) {
    for (ps_source **p = &loop->sources; *p; p = &(*p)->next)
        if (*p == src) {
            *p = src->next;
            return;
        }
}

/* ---- curl glue ----------------------------------------------------------------------- */

static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)easy;
    ps_loop *loop = userp;
    ps_watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w) ps_loop_unwatch(loop, w);
        curl_multi_assign(loop->multi, s, NULL);
        return 0;
    }
    uint32_t ev = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (w) {
        ps_loop_watch_events(loop, w, ev);
    } else {
        w = watch_new(loop, W_CURL, s, ev);
        if (!w) return -1;
        curl_multi_assign(loop->multi, s, w);
    }
    return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    ps_loop *loop = userp;
    loop->curl_due = timeout_ms < 0 ? -1.0 : ps_monotime() + (double)timeout_ms / 1000.0;
    return 0;
}

static void curl_drain(ps_loop *loop) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(loop->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE) {
            ps_curl_owner *o = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&o);
            if (o && o->done) o->done(o, loop, msg->easy_handle, msg->data.result);
            else curl_multi_remove_handle(loop->multi, msg->easy_handle); /* no owner */
        }
}

static void curl_action(ps_loop *loop, curl_socket_t s, int flags) {
    int running;
    loop->in_curl++;
    curl_multi_socket_action(loop->multi, s, flags, &running);
    loop->in_curl--;
}

/* ---- timers (min-heap) --------------------------------------------------------------- */

static void heap_swap(ps_timer *a, ps_timer *b) {
    ps_timer t = *a;
    *a = *b;
    *b = t;
}

/* 0 when out of memory (the timer is not armed). */
static int heap_push(ps_loop *loop, double due, lua_Integer id) {
    if (loop->ntimers == loop->captimers) {
        size_t cap = loop->captimers ? loop->captimers * 2 : 16;
        ps_timer *t = realloc(loop->timers, cap * sizeof *t);
        if (!t) return 0;
        loop->timers = t;
        loop->captimers = cap;
    }
    size_t i = loop->ntimers++;
    loop->timers[i] = (ps_timer){due, id};
    while (i > 0 && loop->timers[(i - 1) / 2].due > loop->timers[i].due) {
        heap_swap(&loop->timers[(i - 1) / 2], &loop->timers[i]);
        i = (i - 1) / 2;
    }
    return 1;
}

static ps_timer heap_pop(ps_loop *loop) {
    ps_timer top = loop->timers[0];
    loop->timers[0] = loop->timers[--loop->ntimers];
    size_t i = 0, n = loop->ntimers;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && loop->timers[l].due < loop->timers[m].due) m = l;
        if (r < n && loop->timers[r].due < loop->timers[m].due) m = r;
        if (m == i) break;
        heap_swap(&loop->timers[i], &loop->timers[m]);
        i = m;
    }
    return top;
}

/* ---- Lua callbacks ------------------------------------------------------------------- */

/* The one traceback message handler of the core (internal.h): strings get a traceback,
 * error objects pass through unchanged. */
int ps_traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg) luaL_traceback(L, L, msg, 1);
    else if (!lua_isnoneornil(L, 1)) return 1;       /* error objects pass through */
    else lua_pushliteral(L, "(error object is nil)");
    return 1;
}

/* Hands the error at the top of L (popped) to its owner: the function at stack index eh
 * when there is one, else the loop's on_error (loop:on_error(fn)), else stderr. A handler
 * that fails itself is reported on stderr with the original error. Never raises. */
static void report_error(ps_loop *loop, lua_State *L, int eh) {
    int err = lua_gettop(L);                           /* ... err */
    if (eh && lua_isfunction(L, eh)) lua_pushvalue(L, eh);          /* ... err h */
    else {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key);  /* ... err loop */
        if (lua_touserdata(L, -1) == loop) lua_getiuservalue(L, -1, 2); /* ... err loop h */
        else lua_pushnil(L);
        lua_remove(L, -2);                             /* ... err h */
    }
    if (lua_isfunction(L, -1)) {
        lua_pushvalue(L, err);                         /* ... err h err */
        if (lua_pcall(L, 1, 0, 0) == LUA_OK) {         /* ... err */
            lua_settop(L, err - 1);
            return;
        }
        fprintf(stderr, "polysim: the loop's error handler failed: %s\n",
                lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
    }
    fprintf(stderr, "polysim: loop callback failed: %s\n",
            lua_isstring(L, err) ? lua_tostring(L, err) : luaL_typename(L, err));
    lua_settop(L, err - 1);                            /* ... */
}

int ps_loop_call(ps_loop *loop, lua_State *L, int nargs, int nresults, int eh) {
    if (eh) eh = lua_absindex(L, eh);
    int base = lua_gettop(L) - nargs;                  /* ... fn args */
    lua_pushcfunction(L, ps_traceback);
    lua_insert(L, base);                               /* ... tb fn args */
    int rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);                               /* ... results | err */
    if (rc == LUA_OK) return 1;
    report_error(loop, L, eh);                         /* ... */
    return 0;
}

int ps_loop_pcall(ps_loop *loop, int nargs, int nresults) {
    return ps_loop_call(loop, loop->L, nargs, nresults, 0);
}

/* The loop's uservalue 1 maps ids to Lua callbacks of timers and watches. */
static void push_callbacks(lua_State *L, ps_loop *loop) {
    (void)loop;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key);      /* loop */
    lua_getiuservalue(L, -1, 1);                       /* loop cbs */
    lua_remove(L, -2);                                 /* cbs */
}

static void lua_watch_cb(ps_loop *loop, void *ud, uint32_t events) {
    lua_State *L = loop->L;
    lua_Integer id = (lua_Integer)(intptr_t)ud;
    push_callbacks(L, loop);                           /* cbs */
    lua_rawgeti(L, -1, id);                            /* cbs entry */
    lua_remove(L, -2);                                 /* entry */
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_rawgeti(L, -1, 3);                             /* entry eh */
    lua_rawgeti(L, -2, 1);                             /* entry eh fn */
    lua_pushstring(L, (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (events & EPOLLOUT) ? "rw"
                      : (events & EPOLLOUT) ? "w" : "r"); /* entry eh fn ev */
    ps_loop_call(loop, L, 1, 0, -3);                      /* entry eh */
    lua_pop(L, 2);                                     /* (empty) */
}

/* ---- step ---------------------------------------------------------------------------- */

static double next_due(ps_loop *loop) {
    double due = -1;
    if (loop->ntimers) due = loop->timers[0].due;
    if (loop->curl_due >= 0 && (due < 0 || loop->curl_due < due)) due = loop->curl_due;
    for (ps_source *s = loop->sources; s; s = s->next) {
        long ms = s->prepare(s->ud);
        if (ms >= 0) {
            double d = ps_monotime() + (double)ms / 1000.0;
            if (due < 0 || d < due) due = d;
        }
    }
    return due;
}

static void run_timers(ps_loop *loop) {
    lua_State *L = loop->L;
    double now = ps_monotime();
    /* Only timers due now: one that re-arms itself at 0 s runs on the next step. */
    size_t budget = loop->ntimers;
    while (budget-- && loop->ntimers && loop->timers[0].due <= now) {
        ps_timer t = heap_pop(loop);
        push_callbacks(L, loop);                       /* cbs */
        lua_rawgeti(L, -1, t.id);                      /* cbs fn|nil */
        lua_pushnil(L);
        lua_rawseti(L, -3, t.id);                      /* cbs fn|nil */
        lua_remove(L, -2);                             /* fn|entry|nil */
        if (lua_istable(L, -1)) {                      /* {fn, false, eh}: with a handler */
            lua_rawgeti(L, -1, 3);                     /* entry eh */
            lua_rawgeti(L, -2, 1);                     /* entry eh fn */
            ps_loop_call(loop, L, 0, 0, -2);              /* entry eh */
            lua_pop(L, 2);
        } else if (lua_isfunction(L, -1)) {
            ps_loop_pcall(loop, 0, 0);
        } else {
            lua_pop(L, 1);                             /* cancelled */
        }
    }
}

/* Waits at most timeout seconds (< 0: until something happens) and dispatches. */
static int loop_step(ps_loop *loop, double timeout) {
    struct epoll_event evs[MAX_EVENTS];
    double due = next_due(loop);
    double now = ps_monotime();
    int ms;
    if (due >= 0) {
        double wait = due - now;
        if (timeout >= 0 && timeout < wait) wait = timeout;
        ms = ps_secs_to_ms_ceil(wait);
    } else {
        ms = timeout < 0 ? -1 : ps_secs_to_ms_ceil(timeout);
    }
    int n = epoll_wait(loop->epfd, evs, MAX_EVENTS, ms);
    if (n < 0) n = 0;                                  /* EINTR: a signal; just return */
    for (int i = 0; i < n; i++) {
        ps_watch *w = evs[i].data.ptr;
        if (w->dead) continue;
        if (w->kind == W_CURL) {
            int flags = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                        ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                        ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
            curl_action(loop, w->fd, flags);
        } else {
            w->cb(loop, w->ud, evs[i].events);
        }
    }
    if (loop->curl_due >= 0 && ps_monotime() >= loop->curl_due) {
        loop->curl_due = -1;
        curl_action(loop, CURL_SOCKET_TIMEOUT, 0);
    }
    curl_drain(loop);
    for (ps_source *s = loop->sources, *next; s; s = next) {
        next = s->next;
        s->run(s->ud);
    }
    run_timers(loop);
    if (loop->depth == 1) bury(loop);
    return n;
}

/* ---- Lua API ------------------------------------------------------------------------- */

ps_loop *ps_loop_check(lua_State *L, int idx) {
    ps_loop *loop = luaL_checkudata(L, idx, LOOP_MT);
    luaL_argcheck(L, !loop->closed, idx, "loop is closed");
    return loop;
}

CURLM *ps_loop_multi(ps_loop *loop) { return loop->multi; }
lua_State *ps_loop_state(ps_loop *loop) { return loop->L; }

/* loop:step([timeout]) -> number of fd events. A callback's error never comes out of here:
 * it goes to that callback's own handler, else to loop:on_error's, else to stderr (issue 8
 * bug 2: the first error used to be raised from whatever step() ran next). */
static int l_step(lua_State *L) {
    /* perf (issue 13): step holds the loop's metatable as upvalue 1 (ps_loop_open), so the
     * check of self is a pointer comparison (a blocking client call steps once or twice);
     * anything else goes through ps_loop_check and its errors. */
    ps_loop *loop = lua_touserdata(L, 1);
    int same = 0;
    if (loop && lua_getmetatable(L, 1)) {              /* loop ... mt */
        same = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
    }
    if (!same || loop->closed) loop = ps_loop_check(L, 1);
    double timeout = luaL_optnumber(L, 2, -1);
    lua_State *saved = loop->L;
    loop->L = L;
    loop->depth++;
    int n = loop_step(loop, timeout);
    loop->depth--;
    loop->L = saved;
    lua_pushinteger(L, n);
    return 1;
}

/* loop:on_error([fn]) -> previous fn | nil: sets (fn) or clears (nil) the handler of errors
 * raised by callbacks that have none of their own; it gets the error (with a traceback). */
static int l_on_error(lua_State *L) {
    ps_loop_check(L, 1);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, 2);                        /* loop fn old */
    lua_insert(L, 2);                                  /* loop old fn */
    lua_setiuservalue(L, 1, 2);                        /* loop old */
    return 1;
}

/* Deadlines from seconds: clamps what a double can hold but a timer cannot use. */
static double due_in(double secs) {
    if (!(secs < 1e12)) secs = 1e12;                   /* ~31,700 years; also NaN */
    return ps_monotime() + secs;
}

/* loop:timer(seconds, fn [, on_error]) -> id; on_error(err) gets fn's error. */
static int l_timer(lua_State *L) {
    ps_loop *loop = ps_loop_check(L, 1);
    double secs = luaL_checknumber(L, 2);
    luaL_argcheck(L, secs >= 0, 2, "delay must not be negative");
    luaL_checktype(L, 3, LUA_TFUNCTION);
    int has_eh = !lua_isnoneornil(L, 4);
    if (has_eh) luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_Integer id = ++loop->next_id;
    if (!heap_push(loop, due_in(secs), id)) return luaL_error(L, "timer: out of memory");
    lua_getiuservalue(L, 1, 1);                        /* cbs */
    if (has_eh) {
        lua_createtable(L, 3, 0);                      /* cbs entry */
        lua_pushvalue(L, 3);
        lua_rawseti(L, -2, 1);
        lua_pushboolean(L, 0);
        lua_rawseti(L, -2, 2);
        lua_pushvalue(L, 4);
        lua_rawseti(L, -2, 3);                         /* cbs entry */
    } else {
        lua_pushvalue(L, 3);                           /* cbs fn */
    }
    lua_rawseti(L, -2, id);                            /* cbs */
    lua_pop(L, 1);
    lua_pushinteger(L, id);
    return 1;
}

/* loop:cancel(id): a timer or a watch; unknown ids are ignored. */
static int l_cancel(lua_State *L) {
    ps_loop *loop = ps_loop_check(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    lua_getiuservalue(L, 1, 1);                        /* cbs */
    if (lua_rawgeti(L, -1, id) == LUA_TTABLE) {        /* cbs entry */
        lua_rawgeti(L, -1, 2);                         /* cbs entry watch */
        ps_loop_unwatch(loop, lua_touserdata(L, -1));
        lua_pop(L, 1);                                 /* cbs entry */
    }
    lua_pop(L, 1);                                     /* cbs */
    lua_pushnil(L);
    lua_rawseti(L, -2, id);                            /* cbs */
    return 0;
}

/* loop:watch(fd, "r"|"w"|"rw", fn [, on_error]) -> id; fn(events) runs on readiness,
 * on_error(err) gets its errors. */
static int l_watch(lua_State *L) {
    ps_loop *loop = ps_loop_check(L, 1);
    int fd = (int)luaL_checkinteger(L, 2);
    const char *mode = luaL_checkstring(L, 3);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 5)) luaL_checktype(L, 5, LUA_TFUNCTION);
    uint32_t ev = (strchr(mode, 'r') ? EPOLLIN : 0) | (strchr(mode, 'w') ? EPOLLOUT : 0);
    luaL_argcheck(L, ev != 0, 3, "mode must be \"r\", \"w\" or \"rw\"");
    lua_Integer id = ++loop->next_id;
    ps_watch *w = ps_loop_watch(loop, fd, ev, lua_watch_cb, (void *)(intptr_t)id);
    if (!w) return luaL_error(L, "watch: cannot watch fd %d: %s", fd, strerror(errno));
    lua_getiuservalue(L, 1, 1);                        /* cbs */
    lua_createtable(L, 3, 0);                          /* cbs entry */
    lua_pushvalue(L, 4);
    lua_rawseti(L, -2, 1);
    lua_pushlightuserdata(L, w);
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, 5);
    lua_rawseti(L, -2, 3);                             /* cbs entry = {fn, w, on_error} */
    lua_rawseti(L, -2, id);                            /* cbs */
    lua_pop(L, 1);
    lua_pushinteger(L, id);
    return 1;
}

/* loop:fd() -> the epoll fd an embedding program can poll for readability. */
static int l_fd(lua_State *L) {
    lua_pushinteger(L, ps_loop_check(L, 1)->epfd);
    return 1;
}

/* loop:timeout() -> seconds until the loop needs a turn, or nil when only fds matter. */
static int l_timeout(lua_State *L) {
    ps_loop *loop = ps_loop_check(L, 1);
    double due = next_due(loop);
    if (due < 0) return 0;
    double wait = due - ps_monotime();
    lua_pushnumber(L, wait < 0 ? 0 : wait);
    return 1;
}

static int l_now(lua_State *L) {
    lua_pushnumber(L, ps_monotime());
    return 1;
}

static int l_gc(lua_State *L) {
    ps_loop *loop = luaL_checkudata(L, 1, LOOP_MT);
    if (loop->closed) return 0;
    loop->closed = 1;
    /* Lua watches still open when the loop goes: only the callbacks table points at them
     * (valgrind saw each one definitely lost at exit). */
    lua_getiuservalue(L, 1, 1);                        /* cbs */
    if (lua_istable(L, -1)) {
        lua_pushnil(L);                                /* cbs nil */
        while (lua_next(L, -2)) {                      /* cbs id entry */
            if (lua_istable(L, -1) && lua_rawgeti(L, -1, 2) == LUA_TLIGHTUSERDATA)
                ps_loop_unwatch(loop, lua_touserdata(L, -1));
            lua_settop(L, 3);                          /* cbs id */
        }
    }
    lua_pop(L, 1);                                     /* (empty) */
    if (loop->multi) curl_multi_cleanup(loop->multi);
    loop->multi = NULL;
    bury(loop);
    free(loop->timers);
    loop->timers = NULL;
    if (loop->epfd >= 0) close(loop->epfd);
    loop->epfd = -1;
    return 0;
}

static int l_tostring(lua_State *L) {
    ps_loop *loop = luaL_checkudata(L, 1, LOOP_MT);
    lua_pushfstring(L, "polysim.Loop (%d timers%s)", (int)loop->ntimers,
                    loop->closed ? ", closed" : "");
    return 1;
}

ps_loop *ps_loop_get(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key) == LUA_TUSERDATA) { /* loop */
        ps_loop *loop = lua_touserdata(L, -1);
        lua_pop(L, 1);
        return loop;
    }
    lua_pop(L, 1);
    ps_loop *loop = lua_newuserdatauv(L, sizeof *loop, 2); /* loop: 1 cbs, 2 on_error */
    memset(loop, 0, sizeof *loop);
    loop->epfd = -1;
    loop->curl_due = -1;
    luaL_setmetatable(L, LOOP_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);                       /* loop */
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->multi = curl_multi_init();
    if (loop->epfd < 0 || !loop->multi) luaL_error(L, "loop: cannot create epoll/curl multi");
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
    curl_multi_setopt(loop->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &loop_key);      /* (empty) */
    return loop;
}

static int l_get(lua_State *L) {
    ps_loop_get(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key);
    return 1;
}

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void ps_loop_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"step", l_step},   {"timer", l_timer}, {"cancel", l_cancel}, {"watch", l_watch},
        {"fd", l_fd},       {"timeout", l_timeout}, {"now", l_now},  {"on_error", l_on_error},
        {NULL, NULL},
    };
    /* curl_global_init is not thread-safe: once per process, whichever host opens first. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    ps_newclass(L, LOOP_MT, methods, l_gc, NULL, l_tostring);
    luaL_getmetatable(L, LOOP_MT);                     /* mt */
    lua_getfield(L, -1, "__index");                    /* mt methods */
    lua_pushvalue(L, -2);                              /* mt methods mt */
    lua_pushcclosure(L, l_step, 1);                    /* mt methods step */
    lua_setfield(L, -2, "step");                       /* mt methods */
    lua_pop(L, 2);
    lua_pushcfunction(L, l_get);
    lua_setfield(L, -2, "loop");
    lua_pushcfunction(L, l_now);
    lua_setfield(L, -2, "monotime");
}
