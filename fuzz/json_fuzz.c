/* libFuzzer target for core.json_decode (src/json.c) through the real module.
 *
 * Input: the JSON text. Invariants: decoding never crashes or raises anything but a
 * "bad JSON" style string; a value it accepts encodes (core.json_encode) to text that
 * decodes again and encodes to the same text (a fixed point), and its unsorted encoding
 * decodes to the same value.
 *
 * The fixed point is taken with sort_keys: without it an object's key order is Lua's hash
 * order, which depends on the state's random string seed and on insertion order, so two
 * equal tables may encode their keys in different orders (the smoke run once failed on
 * {"a44e9\uA83d\ud083u\"a":10,"x\u2222":10,"xded;":[7e301]} for that reason alone;
 * spec/json_spec.lua keeps it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_polysim_core(lua_State *L);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static lua_State *L;
static unsigned long runs;

/* spec/json_spec.lua runs this text too (between the markers): keep it self-contained. */
static const char harness[] =
    /* harness begin */
    "local core, s = ...\n"
    "local SORTED = { sort_keys = true }\n"
    "local ok, v, err = pcall(core.json_decode, s)\n"
    "assert(ok, 'json_decode raised: ' .. tostring(v))\n"
    "if v == nil then assert(type(err) == 'string' and #err > 0, 'no message'); return end\n"
    "local ok2, t = pcall(core.json_encode, v, SORTED)\n"
    "if not ok2 then\n"
    "  -- only what JSON cannot carry back: e.g. a huge integer became a float that is inf\n"
    "  assert(tostring(t):find('json_encode', 1, true), tostring(t)); return\n"
    "end\n"
    "local v2, e2 = core.json_decode(t)\n"
    "assert(e2 == nil, 'its own encoding does not decode: ' .. tostring(e2))\n"
    "assert(core.json_encode(v2, SORTED) == t, 'encode/decode is not a fixed point')\n"
    "local v3, e3 = core.json_decode(core.json_encode(v))\n"
    "assert(e3 == nil, 'its unsorted encoding does not decode: ' .. tostring(e3))\n"
    "assert(core.json_encode(v3, SORTED) == t, 'the unsorted encoding decodes to another value')\n"
    /* harness end */
    ;

static int loaded;

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!L) {
        L = luaL_newstate();
        luaL_openlibs(L);
        CHECK(luaL_loadbuffer(L, harness, sizeof harness - 1, "=json_fuzz") == LUA_OK);
        loaded = luaL_ref(L, LUA_REGISTRYINDEX);
        luaopen_polysim_core(L);
        lua_setfield(L, LUA_REGISTRYINDEX, "json_fuzz.core");
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, loaded);
    lua_getfield(L, LUA_REGISTRYINDEX, "json_fuzz.core");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        fprintf(stderr, "json_fuzz: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (++runs % 4096 == 0) lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
