/* The event loop: one epoll set for curl sockets, server fds, websockets and Lua watches,
 * plus timers. One loop per Lua state, created on first use. */
#ifndef POLYSIM_LOOP_H
#define POLYSIM_LOOP_H

#include <stdint.h>
#include <curl/curl.h>
#include "internal.h"

typedef struct ps_loop ps_loop;
typedef struct ps_watch ps_watch;

/* Called from loop:step for an fd event; runs with ps_loop_state(loop) valid. */
typedef void (*ps_io_cb)(ps_loop *loop, void *ud, uint32_t events);
/* A source with its own clock (libmicrohttpd): prepare returns ms until it needs a turn
 * (-1: no need), run is called after every poll. */
typedef struct ps_source {
    long (*prepare)(void *ud);
    void (*run)(void *ud);
    void *ud;
    struct ps_source *next;
} ps_source;

ps_loop *ps_loop_get(lua_State *L);            /* the state's loop; creates it; stack unchanged */
ps_loop *ps_loop_check(lua_State *L, int idx); /* the loop userdata at idx */
CURLM *ps_loop_multi(ps_loop *loop);
lua_State *ps_loop_state(ps_loop *loop);       /* the thread running step(), else NULL */
double ps_monotime(void);

ps_watch *ps_loop_watch(ps_loop *loop, int fd, uint32_t events, ps_io_cb cb, void *ud);
void ps_loop_watch_events(ps_loop *loop, ps_watch *w, uint32_t events);
void ps_loop_unwatch(ps_loop *loop, ps_watch *w); /* safe inside a callback */
void ps_loop_add_source(ps_loop *loop, ps_source *src);
void ps_loop_remove_source(ps_loop *loop, ps_source *src);

/* Calls the function below nargs arguments on L (ps_loop_state(loop) during a step, or the
 * caller's state outside one) under ps_traceback (luv's
 * luv_cfpcall model). Success: the results replace fn and args, returns 1. Error: fn and
 * args are popped, the error goes to the function at stack index eh (its owner's handler;
 * 0 or a non-function: none), else to the loop's on_error, else to stderr; returns 0.
 * Never raises, and no error is kept for a later step(). */
int ps_loop_call(ps_loop *loop, lua_State *L, int nargs, int nresults, int eh);
/* ps_loop_call on ps_loop_state(loop) without an owner's handler. */
int ps_loop_pcall(ps_loop *loop, int nargs, int nresults);

/* The owner of a curl easy handle on the loop's multi: CURLOPT_PRIVATE points at a struct
 * whose first member is this, and the loop calls done() when curl reports the transfer
 * finished. The loop knows nothing else of HTTP or WebSockets (no import circle: http.c
 * and wsconn.c call the loop, never the reverse). done() decides whether the handle leaves
 * the multi (an HTTP transfer) or stays (a CONNECT_ONLY WebSocket keeps its connection). */
typedef struct ps_curl_owner {
    void (*done)(struct ps_curl_owner *self, ps_loop *loop, CURL *easy, CURLcode result);
} ps_curl_owner;

/* The easy options every handle of ours gets (easy.c): owner as CURLOPT_PRIVATE, no
 * signals, the error buffer, http/https only, TCP keep-alive, TLS verification on (peer and
 * host) with cainfo when given, and the connect timeout in seconds (0: curl's default). */
void ps_easy_defaults(CURL *e, ps_curl_owner *owner, char *errbuf, const char *cainfo,
                      double connect_timeout);

#endif
