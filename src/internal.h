/* Shared declarations of the polysim C core. Only luaopen_polysim_core is exported from
 * the shared object: everything here is built with -fvisibility=hidden. */
#ifndef POLYSIM_INTERNAL_H
#define POLYSIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>

#define PS_EXPORT __attribute__((visibility("default")))

#ifndef POLYSIM_VERSION
#define POLYSIM_VERSION "0.2.0"
/* The one exported symbol. */
PS_EXPORT int luaopen_polysim_core(lua_State *L);

#endif

/* Each concern registers its functions into the module table at the top of the stack and
 * leaves the stack as it found it. core.c calls them in order. */
void ps_json_open(lua_State *L);
void ps_decimal_open(lua_State *L);
void ps_errors_open(lua_State *L);
void ps_loop_open(lua_State *L);
void ps_http_open(lua_State *L);
void ps_server_open(lua_State *L);
void ps_ws_open(lua_State *L);
void ps_sys_open(lua_State *L);
void ps_proc_open(lua_State *L);   /* proc.c: child processes (backtest sweeps) */
void ps_fs_open(lua_State *L);     /* fs.c: cwd, listdir, isdir, mkdir_p */
void ps_signals_open(lua_State *L); /* signals.c: the SIGINT/SIGTERM watchdog */
void ps_fswatch_open(lua_State *L);
void ps_jsonl_open(lua_State *L);  /* jsonl.c: the backtest's recording reader */
void ps_wsconn_open(lua_State *L);

/* core.c: registers the metatable `name` (its __name is set by luaL_newmetatable) with
 * `methods` as __index and the given metamethods (any may be NULL). Stack unchanged. */
void ps_newclass(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                 lua_CFunction close, lua_CFunction tostring);

/* loop.c: the one traceback message handler (lua_pcall's msgh): a string error gets a
 * traceback, any other error value passes through. */
int ps_traceback(lua_State *L);

/* Numbers from users and servers into C integers, never a float cast out of range (UB;
 * caught by -fsanitize=float-cast-overflow). ------------------------------------------- */
/* Seconds to milliseconds for curl and epoll: NaN and negatives give 0, anything past
 * INT_MAX ms (24.8 days) gives INT_MAX. */
static inline long ps_secs_to_ms(double secs) {
    if (!(secs > 0)) return 0;
    double ms = secs * 1000.0;
    return ms >= 2147483647.0 ? 2147483647L : (long)ms;
}
/* Seconds to whole ms, rounded up (a wait never ends early), same clamp. */
static inline int ps_secs_to_ms_ceil(double secs) {
    if (!(secs > 0)) return 0;
    double ms = secs * 1000.0 + 0.999;
    return ms >= 2147483647.0 ? 2147483647 : (int)ms;
}
/* A byte count: NaN and negatives give -1 (the caller's argument error), huge gives SIZE_MAX. */
static inline int ps_number_to_size(double n, size_t *out) {
    if (!(n >= 0)) return -1;
    *out = n >= 18446744073709549568.0 ? (size_t)-1 : (size_t)n;
    return 0;
}

/* json.c -------------------------------------------------------------------------------- */
/* Decodes JSON text. Success: pushes the value, returns 1. Failure: pushes nothing, returns
 * 0 with a message in err. Never raises except on memory exhaustion. */
int ps_json_push(lua_State *L, const char *s, size_t n, char *err, size_t errlen);
/* A recording line: a price record ({"type":"price","t":T,"msg":{...}}, nothing else) pushes
 * t and msg and returns 2, without the record table; any other value is pushed as by
 * ps_json_push (returns 1, or 0 with the message in err). cache: the stack index of a table
 * the price record's long strings are reused from (and kept in) from line to line, and
 * hints PS_JSON_HINTS ints the caller keeps between lines (zeros at first: object sizes); or
 * 0 and NULL. */
#define PS_JSON_HINTS 8
int ps_json_push_record(lua_State *L, const char *s, size_t n, int cache, int *hints, char *err, size_t errlen);
/* Pushes polysim.null (a light userdata sentinel). */
void ps_json_pushnull(lua_State *L);
int ps_json_isnull(lua_State *L, int idx);
/* Encodes the value at idx as JSON and pushes the text (sort_keys: object keys in byte
 * order). Raises "json_encode: ... (at $.path)" on unencodable values, like core.json_encode. */
void ps_json_encode(lua_State *L, int idx, int sort_keys);

/* decimal.c ----------------------------------------------------------------------------- */
/* True when the value at idx is a polysim.Decimal. */
int ps_decimal_isdecimal(lua_State *L, int idx);

/* sha1.c -------------------------------------------------------------------------------- */
void ps_sha1(const void *data, size_t n, unsigned char out[20]);
/* Writes base64 of in[0..n) into out (needs 4*((n+2)/3)+1 bytes), NUL-terminated. */
size_t ps_base64(const unsigned char *in, size_t n, char *out);

/* wsconn.c ------------------------------------------------------------------------------ */
struct ps_wsconn;
struct ps_loop;
/* server.c: the 101 response (a struct MHD_Response *) for an upgrade whose callbacks table
 * { on_open, on_message, on_close } is at upgrade_idx; NULL on failure. */
void *ps_wsconn_server_response(lua_State *L, int upgrade_idx, struct ps_wsconn **list,
                                struct ps_loop *loop, const char *client_key,
                                struct ps_wsconn **backref);
/* server.c: the request of a 101 ended without the upgrade; drops that connection. backref
 * (above) is where server.c keeps it until then: cleared on upgrade and on finish. */
void ps_wsconn_abandon(lua_State *L, struct ps_wsconn *c);
/* server.c's loop source: ms until a close we started times out (-1: none), and the expiry. */
long ps_wsconn_prepare(struct ps_wsconn **list);
void ps_wsconn_expire(lua_State *L, struct ps_wsconn **list);
/* server.c, before MHD_stop_daemon: closes every upgraded connection (1001). */
void ps_wsconn_close_all(lua_State *L, struct ps_wsconn **list);

/* The one exported symbol. */
PS_EXPORT int luaopen_polysim_core(lua_State *L);

#endif
