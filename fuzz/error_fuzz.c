/* libFuzzer target for core.decode_error and core.decode_ratelimit (src/errors.c) through
 * the real module: what a hostile server can send must become an error object, never
 * corrupt memory (issue 8 bug 1 was a use-after-free here).
 *
 * Input layout: byte 0 picks the status (400 + byte, so 400..655), then NUL-separated
 * fields: Retry-After, X-Polysim-Code, X-Request-Id, X-RateLimit-Limit, the body (the rest,
 * NULs included). Invariants: decode_error returns a table with status, code and message
 * strings; tostring(err) is a string; decode_ratelimit returns nil or a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_polysim_core(lua_State *L);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static lua_State *L;
static unsigned long runs;
static int loaded;

static const char harness[] =
    "local core, status, ra, code, rid, limit, body = ...\n"
    "local h = { ['retry-after'] = ra, ['x-polysim-code'] = code, ['x-request-id'] = rid,\n"
    "            ['x-ratelimit-limit'] = limit, ['x-ratelimit-remaining'] = ra }\n"
    "local err = core.decode_error(status, h, body, 'POST', '/v1/orders')\n"
    "assert(type(err) == 'table', 'not a table')\n"
    "assert(err.status == status, 'status')\n"
    "assert(type(err.code) == 'string' and #err.code > 0, 'code')\n"
    "assert(type(err.message) == 'string', 'message')\n"
    "assert(type(tostring(err)) == 'string')\n"
    "if err.retry_after ~= nil then\n"
    "  assert(err.retry_after >= 0 and err.retry_after < math.huge, 'retry_after ' .. tostring(err.retry_after))\n"
    "end\n"
    "local rl = core.decode_ratelimit(h)\n"
    "assert(rl == nil or type(rl) == 'table')\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!L) {
        L = luaL_newstate();
        luaL_openlibs(L);
        if (luaL_loadbuffer(L, harness, sizeof harness - 1, "=error_fuzz") != LUA_OK) abort();
        loaded = luaL_ref(L, LUA_REGISTRYINDEX);
        luaopen_polysim_core(L);
        lua_setfield(L, LUA_REGISTRYINDEX, "error_fuzz.core");
    }
    if (size < 1) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, loaded);
    lua_getfield(L, LUA_REGISTRYINDEX, "error_fuzz.core");
    lua_pushinteger(L, 400 + data[0]);
    const unsigned char *p = data + 1, *e = data + size;
    for (int f = 0; f < 4; f++) {                       /* the four header values */
        const unsigned char *z = p < e ? memchr(p, 0, (size_t)(e - p)) : NULL;
        if (!z) z = e;
        if (z > p) lua_pushlstring(L, (const char *)p, (size_t)(z - p));
        else lua_pushnil(L);
        p = z < e ? z + 1 : e;
    }
    lua_pushlstring(L, (const char *)p, (size_t)(e - p)); /* the body */
    if (lua_pcall(L, 7, 0, 0) != LUA_OK) {
        fprintf(stderr, "error_fuzz: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (++runs % 4096 == 0) lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
