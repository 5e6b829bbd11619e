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
#define POLYSIM_VERSION "0.1.0"
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
void ps_fswatch_open(lua_State *L);

/* json.c -------------------------------------------------------------------------------- */
/* Decodes JSON text. Success: pushes the value, returns 1. Failure: pushes nothing, returns
 * 0 with a message in err. Never raises except on memory exhaustion. */
int ps_json_push(lua_State *L, const char *s, size_t n, char *err, size_t errlen);
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

/* The one exported symbol. */
PS_EXPORT int luaopen_polysim_core(lua_State *L);

#endif
