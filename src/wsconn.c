/* WebSocket connections on the loop, both roles, over the framing code of ws.c.
 *
 * Client: core.ws_connect{ url = "ws://host:port/path?q", on_open = fn(), on_message =
 *   fn(text), on_close = fn(code, reason), connect_timeout = s, max_message = n, cainfo = }
 *   runs over a libcurl CONNECT_ONLY handle that stays in the loop's multi for the whole
 *   connection (removing it closes the socket). The opening handshake is sent in the loop
 *   turn the handle completes; frames go out masked.
 * Server: server.c hands an upgrade request to ps_wsconn_server_response; MHD then gives
 *   us the socket in on_upgrade. Callbacks get the connection first: on_open(conn),
 *   on_message(conn, text), on_close(conn, code, reason). Closed with
 *   MHD_upgrade_action(CLOSE), never close().
 *
 * Both: conn:send(text), conn:close([code [, reason]]), conn:state(), conn:send_raw(bytes)
 * (test hook: bytes go out unframed). Pings are answered, protocol errors close with the
 * parser's code, a peer's close is echoed. on_close runs once, for closes the peer started,
 * protocol errors and lost connections (1006); a local client close() does not call it. A
 * connection is pinned in the registry while it is open. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "loop.h"
#include "ws.h"

#define WSCONN_MT "polysim.WebSocket"
#define RECV_CHUNK 16384
#define CLOSE_WAIT 2.0                   /* seconds a server waits for the close echo */

enum { S_PENDING, S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSING, S_DONE };
static const char *const state_names[] = {"pending", "connecting", "handshake", "open",
                                          "closing", "closed"};

struct ps_wsconn {
    ps_curl_owner owner;             /* first: CURLINFO_PRIVATE; owner.done = curl_done */
    ps_ws_role role;
    int state;
    ps_loop *loop;
    ps_watch *watch;
    int fd;
    uint32_t events;
    int ref;                         /* registry pin while not done */
    /* server */
    struct MHD_UpgradeResponseHandle *urh;
    struct ps_wsconn **list;         /* the server's list, while linked */
    struct ps_wsconn **backref;      /* server.c's pointer to us while pending */
    struct ps_wsconn *next;
    /* client */
    CURL *easy;
    char key[25];
    ps_ws_buf hs;                    /* handshake response so far */
    char errbuf[CURL_ERROR_SIZE];
    /* I/O */
    ps_ws_conn parser;
    ps_ws_buf fly, queue;            /* fly: being sent (stable address); queue: appended */
    size_t fly_off;
    int parser_ready;
    int reading;                     /* inside read_all (Lua callbacks may step the loop) */
    int muted;                       /* EPOLLIN off until the outer read_all is done */
    /* what the last feed reported */
    int got_close, got_error, close_code;
    size_t reason_len;
    char reason[PS_WS_MAX_CONTROL + 1];
    /* server: when a close we started is given up on (the peer never echoed it) */
    double close_deadline;
    int sent_code;
    int overflow;                    /* a pong would pass OUT_CAP: close 1008 (issue 10 #9) */
    /* stats */
    uint64_t messages_in, messages_out;
};
typedef struct ps_wsconn ps_wsconn;

/* ---- helpers ------------------------------------------------------------------------- */

/* Calls callback `name` of c with the connection (server role) and nargs values already on
 * the stack of L. Pops them. Its error goes to the callbacks table's on_error(err), else to
 * loop:on_error (ps_loop_call); outside a step (a close from Lua) the same handlers run. */
static void call_cb(ps_wsconn *c, lua_State *L, const char *name, int nargs) {
    if (!L || c->ref == LUA_NOREF) {
        if (L) lua_pop(L, nargs);
        return;
    }
    int args = lua_gettop(L) - nargs + 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);          /* args ud */
    lua_getiuservalue(L, -1, 1);                        /* args ud cbs */
    if (!lua_istable(L, -1) || lua_getfield(L, -1, name) != LUA_TFUNCTION) {
        lua_settop(L, args - 1);
        return;
    }                                                   /* args ud cbs fn */
    lua_getfield(L, -2, "on_error");                    /* args ud cbs fn eh */
    lua_replace(L, -3);                                 /* args ud eh fn */
    lua_rotate(L, args, 3);                             /* ud eh fn args */
    if (c->role == PS_WS_SERVER) {
        lua_pushvalue(L, args);                         /* ud eh fn args ud */
        lua_rotate(L, args + 3, 1);                     /* ud eh fn ud args */
        nargs++;
    }
    ps_loop_call(c->loop, L, nargs, 0, args + 1);       /* ud eh */
    lua_settop(L, args - 1);
}

static void set_events(ps_wsconn *c, uint32_t ev) {
    if (c->muted) ev &= ~(uint32_t)EPOLLIN;
    if (!c->watch || c->events == ev) return;
    c->events = ev;
    ps_loop_watch_events(c->loop, c->watch, ev);
}

/* 0: sent (maybe partly, *sent), 1: would block, -1: error */
static int raw_send(ps_wsconn *c, const uint8_t *p, size_t n, size_t *sent) {
    *sent = 0;
    if (c->role == PS_WS_SERVER) {
        for (;;) {
            ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
            if (r >= 0) {
                *sent = (size_t)r;
                return 0;
            }
            if (errno == EINTR) continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
        }
    }
    CURLcode rc = curl_easy_send(c->easy, p, n, sent);
    if (rc == CURLE_OK) return 0;
    return rc == CURLE_AGAIN ? 1 : -1;
}

/* 0: data (*got > 0), 1: would block, 2: end of stream, -1: error */
static int raw_recv(ps_wsconn *c, uint8_t *p, size_t n, size_t *got) {
    *got = 0;
    if (c->role == PS_WS_SERVER) {
        for (;;) {
            ssize_t r = recv(c->fd, p, n, 0);
            if (r > 0) {
                *got = (size_t)r;
                return 0;
            }
            if (r == 0) return 2;
            if (errno == EINTR) continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
        }
    }
    CURLcode rc = curl_easy_recv(c->easy, p, n, got);
    if (rc == CURLE_OK) return *got ? 0 : 2;
    return rc == CURLE_AGAIN ? 1 : -1;
}

/* Sends what is queued. Partial sends resume from the same address (OpenSSL's rule): the
 * fly buffer is only reset when empty, new frames go to queue. -1 on a send error. */
static int flush(ps_wsconn *c) {
    if (c->state == S_DONE || c->state == S_PENDING || c->state == S_CONNECTING) return 0;
    for (;;) {
        if (c->fly_off == c->fly.len) {
            c->fly.len = 0;
            c->fly_off = 0;
            if (c->queue.len == 0) break;
            ps_ws_buf t = c->fly;
            c->fly = c->queue;
            c->queue = t;
        }
        size_t sent = 0;
        int r = raw_send(c, c->fly.data + c->fly_off, c->fly.len - c->fly_off, &sent);
        if (r == 0 && sent > 0) {
            c->fly_off += sent;
            continue;
        }
        if (r < 0) return -1;
        set_events(c, EPOLLIN | EPOLLOUT);
        return 0;
    }
    set_events(c, EPOLLIN);
    return 0;
}

/* Tears the connection down: unwatch, close the transport, on_close when notify. */
static void finish(ps_wsconn *c, lua_State *L, int notify, int code, const char *reason,
                   size_t reason_len) {
    if (c->state == S_DONE) return;
    c->state = S_DONE;
    if (c->backref) *c->backref = NULL;
    c->backref = NULL;
    if (c->watch) ps_loop_unwatch(c->loop, c->watch);
    c->watch = NULL;
    if (c->urh) MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
    c->urh = NULL;
    if (c->list) {
        for (ps_wsconn **p = c->list; *p; p = &(*p)->next)
            if (*p == c) {
                *p = c->next;
                break;
            }
        c->list = NULL;
    }
    if (c->easy) {
        CURLM *multi = ps_loop_multi(c->loop);
        if (multi) curl_multi_remove_handle(multi, c->easy);
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
    }
    c->fd = -1;
    if (notify && L) {
        lua_pushinteger(L, code);
        lua_pushlstring(L, reason ? reason : "", reason ? reason_len : 0);
        call_cb(c, L, "on_close", 2);
    }
    if (L && c->ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
        c->ref = LUA_NOREF;
    }
}

static void finish_str(ps_wsconn *c, lua_State *L, int notify, int code, const char *reason) {
    finish(c, L, notify, code, reason, reason ? strlen(reason) : 0);
}

/* Queues a close frame (a code that may not go on the wire becomes an empty close). */
static void queue_close(ps_wsconn *c, int code, const char *reason, size_t len) {
    if (len > PS_WS_MAX_CLOSE_REASON) len = PS_WS_MAX_CLOSE_REASON;
    if (!ps_ws_close_code_valid(code) ||
        ps_ws_append_close(&c->queue, c->role, code, reason, len) != 0)
        ps_ws_append_close(&c->queue, c->role, 0, NULL, 0);
}

/* perf (issue 10 #9), an isolated addition: a server connection that has OUT_CAP bytes
 * queued for a peer and is asked for one more pong or message is a peer that does not read.
 * It is closed with 1008 and what was queued is dropped, so a ping flood costs the server
 * at most OUT_CAP per connection. (send_raw, a test tool, is not counted against it.) */
#define OUT_CAP ((size_t)1 << 20)

static int over_cap(const ps_wsconn *c) {
    return c->role == PS_WS_SERVER && c->fly.len - c->fly_off + c->queue.len > OUT_CAP;
}

static void close_overflow(ps_wsconn *c, lua_State *L) {
    static const char why[] = "peer does not read (outgoing queue over 1 MiB)";
    ps_ws_buf_free(&c->queue);
    queue_close(c, 1008, why, sizeof why - 1);
    flush(c);
    finish(c, L, 1, 1008, why, sizeof why - 1);
    ps_ws_buf_free(&c->queue);
    ps_ws_buf_free(&c->fly);
    c->fly_off = 0;
}

/* ---- receiving ----------------------------------------------------------------------- */

typedef struct {
    ps_wsconn *c;
    lua_State *L;
} feed_ctx;

static void on_event(void *ud, const ps_ws_event *ev) {
    feed_ctx *f = ud;
    ps_wsconn *c = f->c;
    switch (ev->type) {
    case PS_WS_EV_TEXT:
        c->messages_in++;
        if (c->state != S_OPEN || !f->L) break;
        lua_pushlstring(f->L, (const char *)ev->data, ev->len);
        call_cb(c, f->L, "on_message", 1);
        break;
    case PS_WS_EV_PING:
        if (c->state != S_OPEN) break;
        if (over_cap(c)) c->overflow = 1;               /* issue 10 #9: no pong, close 1008 */
        else ps_ws_append_frame(&c->queue, c->role, PS_WS_OP_PONG, 1, ev->data, ev->len);
        break;
    case PS_WS_EV_CLOSE:
    case PS_WS_EV_ERROR: {
        if (ev->type == PS_WS_EV_CLOSE) c->got_close = 1;
        else c->got_error = 1;
        c->close_code = ev->code;
        size_t n = ev->len > PS_WS_MAX_CONTROL ? PS_WS_MAX_CONTROL : ev->len;
        memcpy(c->reason, ev->data, n);
        c->reason[n] = '\0';
        c->reason_len = n;
        break;
    }
    default:
        break;                                          /* binary and pongs: ignored */
    }
}

static void feed(ps_wsconn *c, lua_State *L, const uint8_t *p, size_t n) {
    if (c->state != S_OPEN && c->state != S_CLOSING) return;
    feed_ctx f = {c, L};
    ps_ws_feed(&c->parser, p, n, on_event, &f);
    if (c->state == S_DONE) return;                    /* closed from a callback */
    if (c->got_close) {
        if (c->state == S_OPEN) {                      /* the peer started: echo */
            int code = c->close_code;
            queue_close(c, code == 1005 ? 0 : code, c->reason, c->reason_len);
        }
        flush(c);
        finish(c, L, 1, c->close_code, c->reason, c->reason_len);
        return;
    }
    if (c->got_error) {
        if (c->state == S_OPEN) queue_close(c, c->close_code, c->reason, c->reason_len);
        flush(c);
        finish(c, L, 1, c->close_code, c->reason, c->reason_len);
        return;
    }
    if (flush(c) < 0) finish_str(c, L, 1, 1006, "send failed");
    else if (c->overflow && over_cap(c)) close_overflow(c, L);
    else c->overflow = 0;
}

static void on_open(ps_wsconn *c, lua_State *L) {
    c->state = S_OPEN;
    call_cb(c, L, "on_open", 0);
}

/* Client: bytes of the server's handshake response, then frames. */
static void handshake_bytes(ps_wsconn *c, lua_State *L, const uint8_t *p, size_t n) {
    if (ps_ws_buf_append(&c->hs, p, n) != 0) {
        finish_str(c, L, 1, 1006, "out of memory");
        return;
    }
    size_t hlen = 0;
    int status = 0;
    const char *err = NULL;
    int r = ps_ws_check_response((const char *)c->hs.data, c->hs.len, c->key, &hlen, &status, &err);
    if (r == 0) return;
    if (r < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "handshake refused: %s (HTTP status %d)", err ? err : "?", status);
        finish_str(c, L, 1, 1006, msg);
        return;
    }
    on_open(c, L);
    if (c->state == S_DONE) return;
    ps_ws_buf rest = c->hs;                              /* feed may run callbacks */
    ps_ws_buf_init(&c->hs, NULL, NULL);
    if (rest.len > hlen) feed(c, L, rest.data + hlen, rest.len - hlen);
    ps_ws_buf_free(&rest);
}

static void read_all(ps_wsconn *c, lua_State *L) {
    uint8_t buf[RECV_CHUNK];
    c->reading++;
    while (c->state != S_DONE && c->state != S_PENDING && c->state != S_CONNECTING) {
        size_t got = 0;
        int r = raw_recv(c, buf, sizeof buf, &got);
        if (r == 1) break;
        if (r == 2 || r < 0) {
            finish_str(c, L, 1, 1006, r == 2 ? "connection closed without a close frame"
                                             : "connection failed");
            break;
        }
        if (c->state == S_HANDSHAKE) handshake_bytes(c, L, buf, got);
        else feed(c, L, buf, got);
    }
    if (--c->reading == 0 && c->muted) {               /* a callback stepped the loop */
        c->muted = 0;
        int out = c->fly_off < c->fly.len || c->queue.len > 0;
        set_events(c, EPOLLIN | (out ? EPOLLOUT : 0));
    }
}

static void on_io(ps_loop *loop, void *ud, uint32_t events) {
    ps_wsconn *c = ud;
    lua_State *L = ps_loop_state(loop);
    if (c->state == S_DONE || !L) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);          /* anchor: c stays alive */
    if ((events & EPOLLOUT) && flush(c) < 0) finish_str(c, L, 1, 1006, "send failed");
    if (c->reading) {
        /* A callback of ours is stepping the loop (a blocking call outside a task): the
         * parser is busy, so input waits until that callback returns. */
        if (!c->muted) {
            c->muted = 1;
            set_events(c, c->events);
        }
    } else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        read_all(c, L);
    }
    lua_pop(L, 1);
}

/* ---- creation ------------------------------------------------------------------------ */

static ps_wsconn *new_conn(lua_State *L, ps_loop *loop, ps_ws_role role, int cbs_idx,
                           size_t max_message) {
    cbs_idx = lua_absindex(L, cbs_idx);
    ps_wsconn *c = lua_newuserdatauv(L, sizeof *c, 1);  /* ud */
    memset(c, 0, sizeof *c);
    c->role = role;
    c->loop = loop;
    c->fd = -1;
    c->ref = LUA_NOREF;
    luaL_setmetatable(L, WSCONN_MT);
    lua_pushvalue(L, cbs_idx);
    lua_setiuservalue(L, -2, 1);
    ps_ws_init(&c->parser, role, max_message, NULL, NULL);
    ps_ws_buf_init(&c->fly, NULL, NULL);
    ps_ws_buf_init(&c->queue, NULL, NULL);
    ps_ws_buf_init(&c->hs, NULL, NULL);
    c->parser_ready = 1;
    lua_pushvalue(L, -1);
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);            /* ud */
    return c;
}

/* The loop's done() for a client connection's CONNECT_ONLY handle: the connection is up
 * (or failed). The handle stays in the multi: removing it would close the connection. */
static void curl_done(ps_curl_owner *owner, ps_loop *loop, CURL *easy, CURLcode result) {
    (void)easy;
    ps_wsconn *c = (ps_wsconn *)(void *)owner;
    lua_State *L = ps_loop_state(loop);
    if (c->state != S_CONNECTING || !L) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);          /* anchor */
    if (result != CURLE_OK) {
        char msg[CURL_ERROR_SIZE + 64];
        snprintf(msg, sizeof msg, "connect failed: %s", c->errbuf[0] ? c->errbuf
                                                       : curl_easy_strerror(result));
        finish_str(c, L, 1, 1006, msg);
        lua_pop(L, 1);
        return;
    }
    curl_socket_t fd = CURL_SOCKET_BAD;
    curl_easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &fd);
    if (fd == CURL_SOCKET_BAD) {
        finish_str(c, L, 1, 1006, "connect failed: no socket");
        lua_pop(L, 1);
        return;
    }
    c->fd = (int)fd;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->events = EPOLLIN;
    c->watch = ps_loop_watch(loop, c->fd, EPOLLIN, on_io, c);
    if (!c->watch) {
        finish_str(c, L, 1, 1006, "cannot watch the socket");
        lua_pop(L, 1);
        return;
    }
    c->state = S_HANDSHAKE;                             /* handshake goes out this turn */
    if (flush(c) < 0) finish_str(c, L, 1, 1006, "send failed");
    lua_pop(L, 1);
    return;
}

static const char *opt_str(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    const char *v = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1);                                      /* the table keeps it alive */
    return v;
}

static double opt_num(lua_State *L, int t, const char *k, double d) {
    lua_getfield(L, t, k);
    double v = luaL_optnumber(L, -1, d);
    lua_pop(L, 1);
    return v;
}

/* core.ws_connect{ url=, on_open=, on_message=, on_close=, connect_timeout=, max_message=,
 *                  cainfo=, headers = "Name: value\r\n..." } -> conn */
static int l_ws_connect(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    ps_loop *loop = ps_loop_get(L);
    const char *url = opt_str(L, 1, "url");
    luaL_argcheck(L, url != NULL, 1, "url is required");
    const char *cainfo = opt_str(L, 1, "cainfo");
    const char *extra = opt_str(L, 1, "headers");
    double ctimeout = opt_num(L, 1, "connect_timeout", 10);
    double max_message = opt_num(L, 1, "max_message", 0);
    size_t max_msg = 0;
    luaL_argcheck(L, ctimeout >= 0, 1, "connect_timeout must be a non-negative number");
    luaL_argcheck(L, ps_number_to_size(max_message, &max_msg) == 0, 1,
                  "max_message must be a non-negative number");

    luaL_Buffer b;                                      /* ws:// -> http://, wss:// -> https:// */
    luaL_buffinit(L, &b);
    if (strncmp(url, "ws://", 5) == 0) {
        luaL_addstring(&b, "http://");
        luaL_addstring(&b, url + 5);
    } else if (strncmp(url, "wss://", 6) == 0) {
        luaL_addstring(&b, "https://");
        luaL_addstring(&b, url + 6);
    } else {
        luaL_addstring(&b, url);
    }
    luaL_pushresult(&b);                                /* opts ... hurl */
    const char *hurl = lua_tostring(L, -1);

    CURLU *u = curl_url();
    if (!u) return luaL_error(L, "ws_connect: out of memory");
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, hurl, 0);
    if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_cleanup(u);
    int ok = uc == CURLUE_OK && (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    if (ok) {
        lua_pushfstring(L, "%s%s%s", host, port ? ":" : "", port ? port : "");      /* hostport */
        lua_pushfstring(L, "%s%s%s", path && path[0] ? path : "/", query ? "?" : "",
                        query ? query : "");                                         /* target */
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    if (!ok) return luaL_argerror(L, 1, "url must be a ws://, wss://, http:// or https:// URL");
    const char *hostport = lua_tostring(L, -2), *target = lua_tostring(L, -1);

    ps_wsconn *c = new_conn(L, loop, PS_WS_CLIENT, 1, max_msg);
    if (ps_ws_make_key(c->key) != 0) {
        finish_str(c, L, 0, 0, NULL);
        return luaL_error(L, "ws_connect: no randomness");
    }
    size_t need = ps_ws_client_request(NULL, 0, hostport, target, extra, c->key);
    if (need == 0 || ps_ws_buf_reserve(&c->queue, need + 1) != 0) {
        finish_str(c, L, 0, 0, NULL);
        return luaL_argerror(L, 1, "bad host, path or headers for the handshake");
    }
    ps_ws_client_request((char *)c->queue.data, need + 1, hostport, target, extra, c->key);
    c->queue.len = need;

    CURL *e = c->easy = curl_easy_init();
    if (!e) {
        finish_str(c, L, 0, 0, NULL);
        return luaL_error(L, "ws_connect: cannot create a curl handle");
    }
    c->owner.done = curl_done;
    ps_easy_defaults(e, &c->owner, c->errbuf, cainfo, ctimeout);
    curl_easy_setopt(e, CURLOPT_URL, hurl);
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_SSL_ENABLE_ALPN, 0L);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    CURLMcode mc = curl_multi_add_handle(ps_loop_multi(loop), e);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(e);
        c->easy = NULL;
        finish_str(c, L, 0, 0, NULL);
        return luaL_error(L, "ws_connect: %s", curl_multi_strerror(mc));
    }
    c->state = S_CONNECTING;
    return 1;
}

/* ---- server side --------------------------------------------------------------------- */

static void on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh) {
    (void)connection;
    (void)con_cls;
    ps_wsconn *c = cls;
    lua_State *L = ps_loop_state(c->loop);
    if (c->backref) *c->backref = NULL;
    c->backref = NULL;
    c->urh = urh;
    c->fd = sock;
    if (c->state != S_PENDING || !L) {                  /* server closing: drop it */
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        c->urh = NULL;
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);          /* anchor */
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* MHD turned Nagle back on */
    c->events = EPOLLIN;
    c->watch = ps_loop_watch(c->loop, sock, EPOLLIN, on_io, c);
    if (!c->watch) {
        finish_str(c, L, 1, 1011, "cannot watch the socket");
        lua_pop(L, 1);
        return;
    }
    on_open(c, L);
    if (c->state != S_DONE && extra_in_size) feed(c, L, (const uint8_t *)extra_in, extra_in_size);
    if (c->state != S_DONE && flush(c) < 0) finish_str(c, L, 1, 1006, "send failed");
    if (c->state != S_DONE) read_all(c, L);             /* edge: data already waiting */
    lua_pop(L, 1);
}

/* The 101 response for an upgrade request whose callbacks table is at upgrade_idx. The new
 * connection is linked into *list (the server's) until it ends. NULL on failure. */
void *ps_wsconn_server_response(lua_State *L, int upgrade_idx, struct ps_wsconn **list,
                                struct ps_loop *loop, const char *client_key,
                                struct ps_wsconn **backref) {
    upgrade_idx = lua_absindex(L, upgrade_idx);
    ps_wsconn *c = new_conn(L, loop, PS_WS_SERVER, upgrade_idx, 0); /* ud */
    lua_pop(L, 1);
    c->state = S_PENDING;
    struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgrade, c);
    if (!r) {
        finish_str(c, L, 0, 0, NULL);
        return NULL;
    }
    char accept[29];
    ps_ws_accept_key(client_key, accept);
    MHD_add_response_header(r, "Upgrade", "websocket");
    MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
    c->list = list;
    c->next = *list;
    *list = c;
    c->backref = backref;
    *backref = c;
    return r;
}

void ps_wsconn_abandon(lua_State *L, struct ps_wsconn *c) {
    if (c->state == S_PENDING) finish_str(c, L, 0, 0, NULL);
    else if (c->backref) {
        *c->backref = NULL;
        c->backref = NULL;
    }
}

/* For the server's source: ms until the earliest close deadline in *list (-1: none). */
long ps_wsconn_prepare(struct ps_wsconn **list) {
    double due = -1;
    for (ps_wsconn *c = *list; c; c = c->next)
        if (c->state == S_CLOSING && (due < 0 || c->close_deadline < due)) due = c->close_deadline;
    if (due < 0) return -1;
    double ms = (due - ps_monotime()) * 1000.0;
    return ms <= 0 ? 0 : ps_secs_to_ms(ms / 1000.0) + 1;
}

/* Drops the connections of *list whose peer did not echo our close in time; on_close gets
 * the code we sent. */
void ps_wsconn_expire(lua_State *L, struct ps_wsconn **list) {
    double now = ps_monotime();
    /* on_close may close (unlink) or let go of (free) any other connection, `next`
     * included (issue 8 item 7): after each callback, scan again from the head. A finished
     * connection has left the list, so this ends. */
    for (;;) {
        ps_wsconn *c = *list;
        while (c && (c->state != S_CLOSING || c->close_deadline > now)) c = c->next;
        if (!c) return;
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
        finish_str(c, L, 1, c->sent_code, "the peer did not answer the close");
        lua_pop(L, 1);
    }
}

/* Closes every connection in *list with 1001 (server going away), calling on_close. */
void ps_wsconn_close_all(lua_State *L, struct ps_wsconn **list) {
    while (*list) {
        ps_wsconn *c = *list;
        if (c->state == S_OPEN) {
            static const char why[] = "server going away";
            queue_close(c, 1001, why, sizeof why - 1);
            flush(c);
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
        finish_str(c, L, c->state != S_PENDING, 1001, "server going away");
        lua_pop(L, 1);
        if (*list == c) *list = c->next;                /* finish unlinks; belt and braces */
    }
}

/* ---- Lua methods --------------------------------------------------------------------- */

static ps_wsconn *check_conn(lua_State *L) { return luaL_checkudata(L, 1, WSCONN_MT); }

/* conn:send(text) -> true | nil, err */
static int l_send(lua_State *L) {
    ps_wsconn *c = check_conn(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    if (c->state != S_OPEN) {
        lua_pushnil(L);
        lua_pushstring(L, "websocket is not open");
        return 2;
    }
    if (!ps_ws_utf8_valid((const uint8_t *)s, n)) return luaL_argerror(L, 2, "text must be valid UTF-8");
    if (ps_ws_append_frame(&c->queue, c->role, PS_WS_OP_TEXT, 1, s, n) != 0)
        return luaL_error(L, "send: %s", strerror(errno));
    c->messages_out++;
    if (over_cap(c) && flush(c) == 0 && over_cap(c)) { /* issue 10 #9 */
        close_overflow(c, L);
        lua_pushnil(L);
        lua_pushstring(L, "peer does not read: closed with 1008");
        return 2;
    }
    if (flush(c) < 0) {                                 /* the read side will see it fail */
        set_events(c, EPOLLIN | EPOLLOUT);
        lua_pushnil(L);
        lua_pushstring(L, "send failed");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:send_raw(bytes): unframed bytes (tests of the peer's error handling). */
static int l_send_raw(lua_State *L) {
    ps_wsconn *c = check_conn(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    if (c->state != S_OPEN) return luaL_error(L, "websocket is not open");
    if (ps_ws_buf_reserve(&c->queue, n) != 0) return luaL_error(L, "out of memory");
    memcpy(c->queue.data + c->queue.len, s, n);
    c->queue.len += n;
    flush(c);
    return 0;
}

/* conn:close([code = 1000 [, reason]]). A server waits for the peer's echo before it drops
 * the socket; a client sends its close frame and drops the connection at once. */
static int l_close(lua_State *L) {
    ps_wsconn *c = check_conn(L);
    int code = (int)luaL_optinteger(L, 2, 1000);
    size_t rlen = 0;
    const char *reason = luaL_optlstring(L, 3, "", &rlen);
    luaL_argcheck(L, ps_ws_close_code_valid(code), 2, "invalid close code");
    luaL_argcheck(L, rlen <= PS_WS_MAX_CLOSE_REASON, 3, "reason longer than 123 bytes");
    if (c->state == S_OPEN) {
        queue_close(c, code, reason, rlen);
        c->state = S_CLOSING;
        c->sent_code = code;
        c->close_deadline = ps_monotime() + CLOSE_WAIT;
        flush(c);
        if (c->role == PS_WS_CLIENT) finish(c, L, 0, code, reason, rlen);
    } else if (c->state != S_CLOSING || c->role == PS_WS_CLIENT) {
        finish(c, L, 0, code, reason, rlen);
    }
    return 0;
}

static int l_tbc(lua_State *L) {
    lua_settop(L, 1);
    return l_close(L);
}

static int l_state(lua_State *L) {
    lua_pushstring(L, state_names[check_conn(L)->state]);
    return 1;
}

static int l_gc(lua_State *L) {
    ps_wsconn *c = check_conn(L);
    if (c->state != S_DONE) {
        finish(c, L, 0, 0, NULL, 0);
    }
    if (c->parser_ready) ps_ws_free(&c->parser);
    c->parser_ready = 0;
    ps_ws_buf_free(&c->fly);
    ps_ws_buf_free(&c->queue);
    ps_ws_buf_free(&c->hs);
    return 0;
}

static int l_tostring(lua_State *L) {
    ps_wsconn *c = check_conn(L);
    lua_pushfstring(L, "polysim.WebSocket (%s, %s)", c->role == PS_WS_SERVER ? "server" : "client",
                    state_names[c->state]);
    return 1;
}

void ps_wsconn_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"send", l_send}, {"send_raw", l_send_raw}, {"close", l_close}, {"state", l_state},
        {NULL, NULL},
    };
    ps_newclass(L, WSCONN_MT, methods, l_gc, l_tbc, l_tostring);
    lua_pushcfunction(L, l_ws_connect);
    lua_setfield(L, -2, "ws_connect");
}
