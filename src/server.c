/* The local exchange's front door: libmicrohttpd without threads, its epoll fd inside the
 * loop's, MHD_run after every poll. Each complete request becomes a Lua table handed to
 * the server's handler; the handler's answer table becomes the response. The handler may
 * also ask to drop the connection unanswered, to answer after a delay (fault injection),
 * or to upgrade to a WebSocket (ws_server.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>

#include "loop.h"

#define SERVER_MT "polysim.Server"

/* perf (issue 13): MHD zeroes each connection's memory pool between requests (a memset of
 * the whole pool, and of the read buffer when it moves); with the default 32 KB that was
 * 49k of the ~300k instructions of a GET in callgrind, 16 KB saves 26k of them (8 KB: 37k).
 * 16 KB is Node's header limit: a request's header block up to ~15 KB is answered (cookies
 * count twice: MHD keeps a parsed copy, so ~7.5 KB of a browser's localhost cookies), a
 * larger one gets 431; bodies stream through the pool either way. */
#define CONN_POOL (16 * 1024)

typedef struct pending pending;
typedef struct conn_rec conn_rec;

/* One accepted connection, until its first request's headers are in: the header timeout
 * (slowloris) closes it by shutdown(2) of its socket, which MHD then sees as the peer's
 * close and cleans up as usual. */
struct conn_rec {
    struct ps_server *srv;
    int fd;
    double deadline;         /* 0: headers arrived (or the connection is gone) */
    conn_rec *prev, *next;
};

typedef struct {
    char *p;
    size_t n, cap;
    int too_large;
    int answered;
    double due;              /* a delayed answer: when to send it */
    struct MHD_Response *resp;
    unsigned int status;
    struct MHD_Connection *conn;
    struct ps_server *srv;
    pending *link;
    struct ps_wsconn *ws;    /* a WebSocket answered with 101 but not yet upgraded */
} req_ctx;

struct pending {
    req_ctx *ctx;
    pending *next;
};

typedef struct ps_server ps_server;

struct ps_server {
    struct MHD_Daemon *d;
    ps_loop *loop;
    ps_watch *watch;
    ps_source src;
    size_t max_body;
    pending *delayed;
    int closed;
    unsigned short port;
    struct ps_wsconn *ws;    /* upgraded (or upgrading) WebSocket connections */
    struct ps_stream *streams; /* open streamed (SSE) answers */
    int kick;                /* a stream got data: run MHD without waiting */
    lua_State *stopL;        /* the state closing the server (stream callbacks) */
    double header_timeout;   /* seconds from accept to a first request's complete headers */
    conn_rec *waiting;       /* connections still inside their header timeout, oldest first */
    conn_rec *waiting_tail;
    struct anchored *released; /* answer bodies MHD is done with, to unref (see body_free) */
};

/* perf (issue 13): an answer's body is the handler's Lua string itself, held by a registry
 * ref until MHD frees the response, instead of a copy: the copy of a 1.5 KB market answer
 * was a malloc above glibc's small bins, which consolidated the fast bins on every request
 * (malloc_consolidate + _int_malloc ~5% of the server under wrk in perf). MHD frees
 * responses inside MHD_run or MHD_stop_daemon, where no Lua call may be made: the free
 * callback only queues the ref, released after MHD_run (release_bodies). */
typedef struct anchored {
    struct ps_server *srv;
    int ref;
    struct anchored *next;
} anchored;

static void body_free(void *cls) {
    anchored *a = cls;
    a->next = a->srv->released;
    a->srv->released = a;
}

static void release_bodies(lua_State *L, struct ps_server *s) {
    while (s->released) {
        anchored *a = s->released;
        s->released = a->next;
        luaL_unref(L, LUA_REGISTRYINDEX, a->ref);
        free(a);
    }
}

static void waiting_unlink(conn_rec *c) {
    ps_server *s = c->srv;
    if (c->deadline == 0) return;
    c->deadline = 0;
    if (c->prev) c->prev->next = c->next; else s->waiting = c->next;
    if (c->next) c->next->prev = c->prev; else s->waiting_tail = c->prev;
    c->prev = c->next = NULL;
}

static ps_server *check_server(lua_State *L, int idx) {
    ps_server *s = luaL_checkudata(L, idx, SERVER_MT);
    luaL_argcheck(L, !s->closed, idx, "server is closed");
    return s;
}

/* ---- loop integration ---------------------------------------------------------------- */

static long src_prepare(void *ud) {
    ps_server *s = ud;
    long ms = -1;
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(s->d, &t) == MHD_YES) ms = (long)t;
    double now = ps_monotime();
    for (pending *p = s->delayed; p; p = p->next) {
        long d = p->ctx->due <= now ? 0 : (long)((p->ctx->due - now) * 1000.0) + 1;
        if (ms < 0 || d < ms) ms = d;
    }
    if (s->kick) ms = 0;
    if (s->waiting) {
        long d = s->waiting->deadline <= now ? 0 : (long)((s->waiting->deadline - now) * 1000.0) + 1;
        if (ms < 0 || d < ms) ms = d;
    }
    long w = ps_wsconn_prepare(&s->ws);
    if (w >= 0 && (ms < 0 || w < ms)) ms = w;
    return ms;
}

static void src_run(void *ud) {
    ps_server *s = ud;
    double now = ps_monotime();
    for (pending **pp = &s->delayed; *pp;) {
        pending *p = *pp;
        if (p->ctx->due <= now) {
            *pp = p->next;
            p->ctx->link = NULL;
            MHD_resume_connection(p->ctx->conn);
            free(p);
        } else {
            pp = &p->next;
        }
    }
    s->kick = 0;
    while (s->waiting && s->waiting->deadline <= now) {  /* header timeout */
        conn_rec *c = s->waiting;
        waiting_unlink(c);
        shutdown(c->fd, SHUT_RDWR);
    }
    MHD_run(s->d);
    lua_State *L = ps_loop_state(s->loop);
    if (L && s->released) release_bodies(L, s);
    if (L && s->ws) ps_wsconn_expire(L, &s->ws);
}

static void on_epoll(ps_loop *loop, void *ud, uint32_t events) {
    (void)loop;
    (void)events;
    (void)ud;                                          /* src_run follows every poll */
}

/* ---- request handling ---------------------------------------------------------------- */

static enum MHD_Result push_kv(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
    lua_State *L = cls;
    if (!key) return MHD_YES;
    if (kind == MHD_HEADER_KIND) {
        /* perf (issue 13): lower-cased on the C stack when it fits (a luaL_Buffer per
         * header showed in the front door's profile). */
        size_t n = strlen(key);
        char low[128];
        if (n <= sizeof low) {
            for (size_t i = 0; i < n; i++)
                low[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
            lua_pushlstring(L, low, n);                /* t key */
        } else {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *c = key; *c; c++)
                luaL_addchar(&b, (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c));
            luaL_pushresult(&b);                       /* t key */
        }
    } else {
        lua_pushstring(L, key);
    }
    lua_pushstring(L, value ? value : "");             /* t key value */
    lua_rawset(L, -3);                                 /* t */
    return MHD_YES;
}

static void ctx_free(req_ctx *ctx) {
    if (ctx->resp) MHD_destroy_response(ctx->resp);
    free(ctx->p);
    free(ctx);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    req_ctx *ctx = *con_cls;
    if (!ctx) return;
    if (ctx->ws) {                                     /* the upgrade never happened */
        lua_State *L = ps_loop_state(ctx->srv->loop);
        if (L) ps_wsconn_abandon(L, ctx->ws);
    }
    if (ctx->link) {                                   /* still delayed: unlink */
        for (pending **pp = &ctx->srv->delayed; *pp; pp = &(*pp)->next)
            if ((*pp)->ctx == ctx) {
                pending *p = *pp;
                *pp = p->next;
                free(p);
                break;
            }
    }
    ctx_free(ctx);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    ps_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_rec *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (!c || !fi || s->header_timeout <= 0) return;
        c->srv = s;
        c->fd = fi->connect_fd;
        c->deadline = ps_monotime() + s->header_timeout;
        c->prev = s->waiting_tail;
        if (s->waiting_tail) s->waiting_tail->next = c; else s->waiting = c;
        s->waiting_tail = c;
    } else {
        conn_rec *c = *socket_context;
        if (c) {
            if (c->srv) waiting_unlink(c);
            free(c);
        }
        *socket_context = NULL;
    }
}

/* Builds an MHD response from the handler's answer at the top of the stack. Returns NULL
 * with *drop set when the handler asked to drop the connection. */
static struct MHD_Response *make_response(lua_State *L, ps_server *s, unsigned int *status,
                                          int *drop, double *delay) {
    int ans = lua_gettop(L);
    *drop = 0;
    *delay = 0;
    if (!lua_istable(L, ans)) {
        *status = 500;
        static const char msg[] = "{\"error\":\"INTERNAL_ERROR\",\"message\":\"handler returned no response\"}";
        return MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    }
    if (lua_getfield(L, ans, "drop") != LUA_TNIL && lua_toboolean(L, -1)) *drop = 1;
    lua_pop(L, 1);
    if (*drop) return NULL;
    lua_getfield(L, ans, "delay");
    *delay = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    lua_getfield(L, ans, "status");
    *status = lua_isinteger(L, -1) ? (unsigned int)lua_tointeger(L, -1) : 200;
    lua_pop(L, 1);
    size_t n = 0;
    struct MHD_Response *r = NULL;
    lua_getfield(L, ans, "body");                      /* ans body */
    anchored *a = lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) ? malloc(sizeof *a) : NULL;
    if (a) {
        const char *body = lua_tolstring(L, -1, &n);
        r = MHD_create_response_from_buffer_with_free_callback_cls(n, (void *)body, body_free, a);
        if (!r) {
            free(a);
            lua_pop(L, 1);                             /* ans */
            return NULL;
        }
        a->srv = s;
        a->ref = luaL_ref(L, LUA_REGISTRYINDEX);       /* ans */
    } else {                                           /* empty, a number, nothing: copied */
        const char *body = lua_isstring(L, -1) ? lua_tolstring(L, -1, &n) : "";
        r = MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
        lua_pop(L, 1);                                 /* ans */
        if (!r) return NULL;
    }
    int has_ct = 0;
    if (lua_getfield(L, ans, "headers") == LUA_TTABLE) { /* ans hdrs */
        lua_pushnil(L);
        while (lua_next(L, -2)) {                      /* ans hdrs k v */
            if (lua_type(L, -2) == LUA_TSTRING && (lua_type(L, -1) == LUA_TSTRING ||
                                                   lua_type(L, -1) == LUA_TNUMBER)) {
                const char *k = lua_tostring(L, -2);
                lua_pushvalue(L, -1);                  /* copy: tostring must not touch the key */
                MHD_add_response_header(r, k, lua_tostring(L, -1));
                lua_pop(L, 1);
                if (strcasecmp(k, "content-type") == 0) has_ct = 1;
            }
            lua_pop(L, 1);                             /* ans hdrs k */
        }
    }
    lua_pop(L, 1);                                     /* ans */
    if (!has_ct) MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

/* The handler answered { upgrade = { on_open, on_message, on_close } } (table at the top of
 * the stack): a 101 when the request is a valid WebSocket upgrade, else a 400. */
static struct MHD_Response *upgrade_response(lua_State *L, ps_server *s, req_ctx *ctx,
                                             struct MHD_Connection *conn, const char *method,
                                             unsigned int *status) {
    const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    const char *why = NULL;
    if (strcmp(method, "GET") != 0) why = "a WebSocket upgrade must be a GET";
    else if (!up || !strcasestr(up, "websocket")) why = "missing Upgrade: websocket";
    else if (!key || strlen(key) != 24) why = "missing or malformed Sec-WebSocket-Key";
    else if (!ver || strcmp(ver, "13") != 0) why = "Sec-WebSocket-Version must be 13";
    if (why) {
        *status = strcmp(method, "GET") != 0 ? 405 : (ver && strcmp(ver, "13") != 0) ? 426 : 400;
        char msg[160];
        int n = snprintf(msg, sizeof msg, "{\"error\":\"BAD_REQUEST\",\"message\":\"%s\"}", why);
        struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, msg, MHD_RESPMEM_MUST_COPY);
        if (r) {
            MHD_add_response_header(r, "Content-Type", "application/json");
            if (*status == 426) MHD_add_response_header(r, "Sec-WebSocket-Version", "13");
        }
        return r;
    }
    *status = MHD_HTTP_SWITCHING_PROTOCOLS;
    return ps_wsconn_server_response(L, -1, &s->ws, s->loop, key, &ctx->ws);
}

/* ---- streamed answers (server-sent events) ------------------------------------------- */
/* The handler answered { status, headers, stream = { on_open = fn(st), on_close = fn(st) } }:
 * a chunked response fed by st:write(text); st:close() ends it after what is buffered. The
 * connection is suspended while the buffer is empty and resumed by the next write. on_close
 * runs once when the connection ends (client gone, st:close() drained, or server closed). */
#define STREAM_MT "polysim.ServerStream"

typedef struct ps_stream {
    char *p;
    size_t n, off, cap;
    int eof, suspended, gone, ref;
    struct MHD_Connection *conn;
    ps_server *srv;
    struct ps_stream *next;
} ps_stream;

typedef struct { ps_stream *st; } stream_box;

static ps_stream *check_stream(lua_State *L) {
    return ((stream_box *)luaL_checkudata(L, 1, STREAM_MT))->st;
}

static void stream_wake(ps_stream *st) {
    if (st->suspended && st->conn) {
        st->suspended = 0;
        MHD_resume_connection(st->conn);
    }
    st->srv->kick = 1;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    ps_stream *st = cls;
    size_t left = st->n - st->off;
    if (left) {
        size_t k = left < max ? left : max;
        memcpy(buf, st->p + st->off, k);
        st->off += k;
        if (st->off == st->n) st->off = st->n = 0;
        return (ssize_t)k;
    }
    if (st->eof || st->srv->closed) return MHD_CONTENT_READER_END_OF_STREAM;
    st->suspended = 1;                                 /* nothing yet: wait for a write */
    MHD_suspend_connection(st->conn);
    return 0;
}

static void stream_free(void *cls) {
    ps_stream *st = cls;
    ps_server *s = st->srv;
    for (ps_stream **pp = &s->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) { *pp = st->next; break; }
    st->conn = NULL;
    st->gone = 1;
    free(st->p);
    st->p = NULL;
    st->n = st->off = st->cap = 0;
    lua_State *L = ps_loop_state(s->loop);
    if (!L) L = s->stopL;
    if (!L || st->ref == LUA_NOREF) return;            /* the box frees st when collected */
    int top = lua_gettop(L);
    if (lua_checkstack(L, 4)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref);    /* box */
        lua_getiuservalue(L, -1, 1);                   /* box spec */
        if (lua_istable(L, -1) && lua_getfield(L, -1, "on_close") == LUA_TFUNCTION) {
            lua_pushvalue(L, -3);                      /* box spec fn box */
            ps_loop_call(s->loop, L, 1, 0, 0);
        }
    }
    lua_settop(L, top);
    luaL_unref(L, LUA_REGISTRYINDEX, st->ref);
    st->ref = LUA_NOREF;
}

static int l_stream_write(lua_State *L) {
    ps_stream *st = check_stream(L);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    if (st->gone || st->eof) { lua_pushboolean(L, 0); return 1; }
    if (st->n + n > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->n + n) cap *= 2;
        char *p = realloc(st->p, cap);
        if (!p) return luaL_error(L, "out of memory");
        st->p = p;
        st->cap = cap;
    }
    memcpy(st->p + st->n, text, n);
    st->n += n;
    stream_wake(st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_stream_close(lua_State *L) {
    ps_stream *st = check_stream(L);
    if (!st->gone && !st->eof) {
        st->eof = 1;
        stream_wake(st);
    }
    return 0;
}

static int l_stream_is_open(lua_State *L) {
    ps_stream *st = check_stream(L);
    lua_pushboolean(L, !st->gone && !st->eof);
    return 1;
}

static int l_stream_gc(lua_State *L) {
    stream_box *b = luaL_checkudata(L, 1, STREAM_MT);
    if (b->st && b->st->gone) free(b->st);             /* else MHD still holds it */
    b->st = NULL;
    return 0;
}

/* Builds the streamed response from the answer at index ans (its `stream` table at the top)
 * and calls stream.on_open(st). Pops the stream table. */
static struct MHD_Response *stream_response(lua_State *L, ps_server *s, struct MHD_Connection *conn,
                                            int ans, unsigned int *status) {
    ps_stream *st = calloc(1, sizeof *st);
    if (!st) { lua_pop(L, 1); return NULL; }
    st->conn = conn;
    st->srv = s;
    st->ref = LUA_NOREF;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read,
                                                               st, stream_free);
    if (!r) { free(st); lua_pop(L, 1); return NULL; }
    stream_box *b = lua_newuserdatauv(L, sizeof *b, 1); /* spec box */
    b->st = st;
    luaL_setmetatable(L, STREAM_MT);
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 1);                       /* spec box */
    lua_pushvalue(L, -1);
    st->ref = luaL_ref(L, LUA_REGISTRYINDEX);          /* kept until the connection ends */
    st->next = s->streams;
    s->streams = st;
    lua_getfield(L, ans, "status");
    *status = lua_isinteger(L, -1) ? (unsigned int)lua_tointeger(L, -1) : 200;
    lua_pop(L, 1);
    if (lua_getfield(L, ans, "headers") == LUA_TTABLE) { /* spec box hdrs */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
                MHD_add_response_header(r, lua_tostring(L, -2), lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);                                     /* spec box */
    if (lua_getfield(L, -2, "on_open") == LUA_TFUNCTION) { /* spec box fn */
        lua_pushvalue(L, -2);
        ps_loop_call(s->loop, L, 1, 0, 0);             /* spec box */
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls) {
    (void)version;
    ps_server *s = cls;
    req_ctx *ctx = *con_cls;
    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx) return MHD_NO;
        ctx->conn = conn;
        ctx->srv = s;
        *con_cls = ctx;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci && ci->socket_context) {                /* headers are in */
            conn_rec *c = ci->socket_context;
            if (c->srv) waiting_unlink(c);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (ctx->too_large || ctx->n + n > s->max_body) {
            ctx->too_large = 1;                        /* keep reading, keep nothing */
            return MHD_YES;
        }
        if (ctx->n + n + 1 > ctx->cap) {
            size_t cap = ctx->cap ? ctx->cap * 2 : 4096;
            while (cap < ctx->n + n + 1) cap *= 2;
            char *p = realloc(ctx->p, cap);
            if (!p) return MHD_NO;
            ctx->p = p;
            ctx->cap = cap;
        }
        memcpy(ctx->p + ctx->n, upload_data, n);
        ctx->n += n;
        return MHD_YES;
    }
    if (ctx->resp) {                                   /* resumed after a delay */
        enum MHD_Result r = MHD_queue_response(conn, ctx->status, ctx->resp);
        MHD_destroy_response(ctx->resp);
        ctx->resp = NULL;
        return r;
    }
    if (ctx->answered) return MHD_NO;
    ctx->answered = 1;

    lua_State *L = ps_loop_state(s->loop);
    if (!L) return MHD_NO;
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 8)) return MHD_NO;
    lua_rawgetp(L, LUA_REGISTRYINDEX, s);              /* server */
    lua_getiuservalue(L, -1, 1);                       /* server handler */
    lua_remove(L, -2);                                 /* handler */
    /* 12: the 5 fields set here, body or too_large, and what serve.lua and the exchange add
     * (json or json_error, clean, text_ok): at 8 a POST's table rehashed on the way. */
    lua_createtable(L, 0, 12);                         /* handler req */
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, url);
    lua_setfield(L, -2, "path");
    /* perf (issue 13): each table made at its final size (MHD counts without an iterator):
     * the headers of a client's POST (8 or 9) grew theirs through four rehashes, ~4k of
     * the ~10k instructions push_kv cost a request in callgrind. */
    lua_createtable(L, 0, MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, NULL, NULL));
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, push_kv, L);
    lua_setfield(L, -2, "query");
    lua_createtable(L, 0, MHD_get_connection_values(conn, MHD_HEADER_KIND, NULL, NULL));
    MHD_get_connection_values(conn, MHD_HEADER_KIND, push_kv, L);
    lua_setfield(L, -2, "headers");
    if (ctx->too_large) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "too_large");
    } else if (ctx->n) {
        lua_pushlstring(L, ctx->p, ctx->n);
        lua_setfield(L, -2, "body");
    }
    free(ctx->p);
    ctx->p = NULL;
    ctx->n = ctx->cap = 0;
    lua_pushlightuserdata(L, conn);
    lua_setfield(L, -2, "connection");                 /* handler req */
    unsigned int status = 500;
    int drop = 0;
    double delay = 0;
    struct MHD_Response *resp;
    if (ps_loop_pcall(s->loop, 1, 1)) {                /* ans */
        if (lua_istable(L, -1) && lua_getfield(L, -1, "upgrade") == LUA_TTABLE) { /* ans up */
            resp = upgrade_response(L, s, ctx, conn, method, &status);
            lua_settop(L, top);
            if (!resp) return MHD_NO;
            enum MHD_Result r = MHD_queue_response(conn, status, resp);
            MHD_destroy_response(resp);
            return r;
        }
        lua_settop(L, top + 1);                        /* ans */
        if (lua_istable(L, -1) && lua_getfield(L, -1, "stream") == LUA_TTABLE) { /* ans stream */
            resp = stream_response(L, s, conn, top + 1, &status);
            lua_settop(L, top);
            if (!resp) return MHD_NO;
            enum MHD_Result r = MHD_queue_response(conn, status, resp);
            MHD_destroy_response(resp);
            return r;
        }
        lua_settop(L, top + 1);                        /* ans */
        resp = make_response(L, s, &status, &drop, &delay);
    } else {
        static const char msg[] = "{\"error\":\"INTERNAL_ERROR\",\"message\":\"handler failed\"}";
        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    }
    lua_settop(L, top);
    if (drop || !resp) return MHD_NO;                  /* MHD closes the connection */
    if (delay > 0) {
        pending *p = malloc(sizeof *p);
        if (p) {
            ctx->resp = resp;
            ctx->status = status;
            ctx->due = ps_monotime() + delay;
            ctx->link = p;
            p->ctx = ctx;
            p->next = s->delayed;
            s->delayed = p;
            MHD_suspend_connection(conn);
            return MHD_YES;
        }
    }
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* ---- Lua API ------------------------------------------------------------------------- */

static void server_stop(lua_State *L, ps_server *s) {
    if (s->closed) return;
    s->closed = 1;
    if (s->watch) ps_loop_unwatch(s->loop, s->watch);
    s->watch = NULL;
    ps_loop_remove_source(s->loop, &s->src);
    /* MHD aborts when stopped with suspended connections: resume them unanswered. */
    while (s->delayed) {
        pending *p = s->delayed;
        s->delayed = p->next;
        p->ctx->link = NULL;
        MHD_resume_connection(p->ctx->conn);
        free(p);
    }
    ps_wsconn_close_all(L, &s->ws);                    /* MHD must not stop with them open */
    for (ps_stream *st = s->streams; st; st = st->next) {  /* nor with suspended streams */
        st->eof = 1;
        if (st->suspended && st->conn) {
            st->suspended = 0;
            MHD_resume_connection(st->conn);
        }
    }
    s->stopL = L;
    if (s->d) MHD_stop_daemon(s->d);
    release_bodies(L, s);                              /* the responses it freed */
    s->stopL = NULL;
    s->d = NULL;
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, s);
}

/* Descriptors: raise the soft limit to the hard one, so the connection limit below, not
 * RLIMIT_NOFILE, is what bounds the server. Returns the usable descriptor count. */
static rlim_t raise_nofile(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 1024;
    if (r.rlim_cur < r.rlim_max) {
        rlim_t want = r.rlim_max == RLIM_INFINITY ? 65536 : r.rlim_max;
        struct rlimit n = {want, r.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &n) == 0) r.rlim_cur = want;
    }
    return r.rlim_cur;
}

/* The listening socket, made here so that it has SO_REUSEADDR (a restart beside the old
 * server's closing connections binds) and never SO_REUSEPORT (a second server on a busy port
 * fails: issue 11). -1 with errno set on failure. */
static int listen_socket(const struct sockaddr_storage *ss) {
    int fam = ss->ss_family;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fam == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    socklen_t len = fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* core.serve{ host = "127.0.0.1", port = 0, max_body = N, handler = fn,
 *             header_timeout = 10 (s), per_ip = 256, max_connections = 8192 } -> server
 * The listening socket is exclusive (no SO_REUSEPORT): a busy port fails with "address in
 * use". epoll (no FD_SETSIZE ceiling); idle connections close after 120 s. */
static int l_serve(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    const char *host = luaL_optstring(L, -1, "127.0.0.1");
    lua_getfield(L, 1, "port");
    lua_Integer port = luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "max_body");
    lua_Integer max_body = luaL_optinteger(L, -1, 1 << 20);
    lua_getfield(L, 1, "header_timeout");
    lua_Number header_timeout = luaL_optnumber(L, -1, 10);
    lua_getfield(L, 1, "per_ip");
    lua_Integer per_ip = luaL_optinteger(L, -1, 256);
    lua_getfield(L, 1, "max_connections");
    lua_Integer max_conn = luaL_optinteger(L, -1, 8192);
    lua_getfield(L, 1, "handler");                     /* last: the handler stays on top */
    luaL_argcheck(L, lua_isfunction(L, -1), 1, "handler must be a function");
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port must be 0..65535");
    luaL_argcheck(L, per_ip >= 0 && max_conn > 0, 1, "per_ip and max_connections must be positive");
    rlim_t nofile = raise_nofile();
    if ((rlim_t)max_conn + 64 > nofile) max_conn = nofile > 128 ? (lua_Integer)(nofile - 64) : 64;
    ps_loop *loop = ps_loop_get(L);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        return luaL_argerror(L, 1, "host must be a numeric IPv4 or IPv6 address");
    }

    ps_server *s = lua_newuserdatauv(L, sizeof *s, 1); /* ... handler server */
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SERVER_MT);
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 1);                       /* ... handler server */
    s->loop = loop;
    s->max_body = (size_t)max_body;
    s->header_timeout = header_timeout;
    int lfd = listen_socket(&ss);
    if (lfd < 0) {
        int e = errno;
        s->closed = 1;
        lua_pushnil(L);
        lua_pushfstring(L, "cannot listen on %s:%d: %s", host, (int)port,
                        e == EADDRINUSE ? "address in use" : strerror(e));
        return 2;
    }
    s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)lfd,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)max_conn,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)per_ip,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL,
                            MHD_OPTION_END);
    if (!s->d) {
        s->closed = 1;
        lua_pushnil(L);
        int e = errno;
        lua_pushfstring(L, "cannot listen on %s:%d: %s", host, (int)port,
                        e == EADDRINUSE ? "address in use" : strerror(e));
        return 2;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {                                       /* no epoll descriptor: cannot be watched */
        MHD_stop_daemon(s->d);
        s->d = NULL;
        s->closed = 1;
        lua_pushnil(L);
        lua_pushliteral(L, "cannot listen: the server has no epoll descriptor");
        return 2;
    }
    s->watch = ps_loop_watch(loop, info->epoll_fd, EPOLLIN, on_epoll, s);
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (uint16_t)port;
    s->src = (ps_source){src_prepare, src_run, s, NULL};
    ps_loop_add_source(loop, &s->src);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, s);              /* kept alive until closed */
    return 1;
}

static int l_port(lua_State *L) {
    lua_pushinteger(L, check_server(L, 1)->port);
    return 1;
}

static int l_close(lua_State *L) {
    ps_server *s = luaL_checkudata(L, 1, SERVER_MT);
    server_stop(L, s);
    return 0;
}

static int l_tostring(lua_State *L) {
    ps_server *s = luaL_checkudata(L, 1, SERVER_MT);
    lua_pushfstring(L, "polysim.Server (port %d%s)", (int)s->port, s->closed ? ", closed" : "");
    return 1;
}

/* core.siphash24(k0, k1, s) -> integer: SipHash-2-4 (Aumasson & Bernstein), the same
 * function as lua/polysim/exchange/siphash.lua, which uses this when present. perf (issue
 * 13): the Lua version was over half of the front door's Lua time per request (the
 * exchange fingerprints the presented API key on every request). */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                          \
    do {                                                                                  \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                         \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                            \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                            \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                         \
    } while (0)

static int l_siphash24(lua_State *L) {
    uint64_t k0 = (uint64_t)luaL_checkinteger(L, 1), k1 = (uint64_t)luaL_checkinteger(L, 2);
    size_t n;
    const unsigned char *m = (const unsigned char *)luaL_checklstring(L, 3, &n);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t full = n - n % 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--) w = (w << 8) | m[i + (size_t)j];
        v3 ^= w;
        SIPROUND;
        SIPROUND;
        v0 ^= w;
    }
    uint64_t b = (uint64_t)(n & 0xff) << 56;
    for (size_t j = 0; j < n - full; j++) b |= (uint64_t)m[full + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    lua_pushinteger(L, (lua_Integer)(v0 ^ v1 ^ v2 ^ v3));
    return 1;
}

/* core.uuid4(a, b) -> "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" from two 64-bit integers, the
 * text rng.lua's uuid() formats (which uses this when present). perf (issue 13): every
 * request gets one for its x-request-id, and string.format's six %x were 11.8k of the 45k
 * instructions of a health check in callgrind. */
static int l_uuid4(lua_State *L) {
    uint64_t a = (uint64_t)luaL_checkinteger(L, 1), b = (uint64_t)luaL_checkinteger(L, 2);
    static const char hex[] = "0123456789abcdef";
    char out[36];
    char *o = out;
#define PUT(v, ndig)                                                                      \
    do {                                                                                  \
        for (int k_ = (ndig) - 1; k_ >= 0; k_--) *o++ = hex[((v) >> (4 * k_)) & 0xf];    \
    } while (0)
    PUT(a >> 32, 8);
    *o++ = '-';
    PUT((a >> 16) & 0xffff, 4);
    *o++ = '-';
    *o++ = '4';
    PUT(a & 0xfff, 3);
    *o++ = '-';
    *o++ = hex[8 + ((b >> 62) & 3)];
    PUT((b >> 48) & 0xfff, 3);
    *o++ = '-';
    PUT(b & 0xffffffffffffull, 12);
#undef PUT
    lua_pushlstring(L, out, sizeof out);
    return 1;
}

void ps_server_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"port", l_port}, {"close", l_close}, {NULL, NULL},
    };
    ps_newclass(L, SERVER_MT, methods, l_close, l_close, l_tostring);
    static const luaL_Reg stream_methods[] = {
        {"write", l_stream_write}, {"close", l_stream_close}, {"is_open", l_stream_is_open},
        {NULL, NULL},
    };
    ps_newclass(L, STREAM_MT, stream_methods, l_stream_gc, NULL, NULL);
    lua_pushcfunction(L, l_serve);
    lua_setfield(L, -2, "serve");
    lua_pushcfunction(L, l_siphash24);
    lua_setfield(L, -2, "siphash24");
    lua_pushcfunction(L, l_uuid4);
    lua_setfield(L, -2, "uuid4");
}
