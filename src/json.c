/* json.c: RFC 8259 JSON for polysim.
 *
 * Decoder: one recursive-descent pass straight onto the Lua stack (ps_json_push, exposed as
 * core.json_decode). Errors are returned, never raised (except on memory exhaustion); all
 * scratch memory is Lua-managed (luaL_Buffer, userdata), so an abandoned decode leaks nothing.
 *
 * Encoder: builds the text in a scratch userdata held at a fixed stack slot and grown by
 * replacement, so a raised error (unencodable value) leaves nothing to free.
 *
 * Values: JSON null is the NULL light userdata (core.null), the very value lua-cjson uses for
 * cjson.null, so the two libraries' tables mix; decoded arrays share one
 * metatable (core.array_mt, kept in the registry under a static address) so an empty decoded
 * array re-encodes as [] rather than {}. */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DEC_MAX_DEPTH 200
#define ENC_MAX_DEPTH 100

static char array_mt_key;      /* registry key of the shared array metatable */
static char scratch_key;       /* registry key of json_encode's spare buffer (a userdata) */
#define SCRATCH_KEEP (256u * 1024)   /* bigger buffers are not kept */

void ps_json_pushnull(lua_State *L) { lua_pushlightuserdata(L, NULL); }

int ps_json_isnull(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* Byte classes shared by both directions: 1 for printable ASCII that needs no escaping and
 * is not '"' or '\\'; 0 otherwise (control characters, quote, backslash, bytes >= 0x80). */
static unsigned char plain[256];

static void init_tables(void) {
    for (int c = 0x20; c < 0x80; c++) plain[c] = (c != '"' && c != '\\');
}

/* Length of the well-formed UTF-8 sequence starting at p (whose lead byte is >= 0x80), or 0
 * when it is malformed: stray continuation, overlong form, surrogate, above U+10FFFF or cut
 * short by e. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e) {
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0xC2) return 0;
    if (c < 0xE0) n = 2;
    else if (c < 0xF0) { n = 3; if (c == 0xE0) lo = 0xA0; else if (c == 0xED) hi = 0x9F; }
    else if (c < 0xF5) { n = 4; if (c == 0xF0) lo = 0x90; else if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* ======================================================================================= */
/* Decoder                                                                                  */
/* ======================================================================================= */

typedef struct {
    lua_State *L;
    const char *s, *p, *e;  /* text start, cursor, end */
    char *err;
    size_t errlen;
    int depth;
    int mtidx;              /* absolute stack index of the array metatable */
    int cache;              /* absolute stack index of a string cache (ps_json_push_record), or 0 */
    int *hints;             /* with cache: the last object size at each depth (PS_JSON_HINTS) */
    char dp;                /* locale decimal point, 0 until first needed */
} Dec;

/* Records "bad JSON at byte N: ..." (N is 1-based; the end of input is byte n+1). */
static int dec_fail(Dec *d, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int dec_fail(Dec *d, const char *at, const char *fmt, ...) {
    if (d->err && d->errlen > 0) {
        int k = snprintf(d->err, d->errlen, "bad JSON at byte %zu: ", (size_t)(at - d->s) + 1);
        if (k >= 0 && (size_t)k < d->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(d->err + k, d->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return 0;
}

static int dec_eof(Dec *d) { return dec_fail(d, d->e, "unexpected end of input"); }

static int dec_unexpected(Dec *d, const char *what) {
    unsigned char c = (unsigned char)*d->p;
    if (c > 0x20 && c < 0x7F)
        return dec_fail(d, d->p, "unexpected '%c', %s", c, what);
    return dec_fail(d, d->p, "unexpected byte 0x%02X, %s", c, what);
}

static inline void skip_ws(Dec *d) {
    const char *p = d->p, *e = d->e;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    d->p = p;
}

static int dec_value(Dec *d);

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)p[i], x;
        if (c >= '0' && c <= '9') x = c - '0';
        else if (c >= 'a' && c <= 'f') x = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') x = c - 'A' + 10;
        else return -1;
        v = v * 16 + x;
    }
    return v;
}

static char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { *o++ = (char)cp; }
    else if (cp < 0x800) { *o++ = (char)(0xC0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18)); *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Slow path of dec_string, for strings holding escapes. Kept out of line so the luaL_Buffer
 * (about 1 KB of C stack) is not part of every recursive frame. d->p is at the opening
 * quote, q at the first backslash. Decoding never lengthens the text, so one buffer of the
 * raw length suffices. */
static __attribute__((noinline)) int dec_string_escaped(Dec *d, const char *q) {
    lua_State *L = d->L;
    const char *start = d->p + 1, *end = q, *e = d->e;
    /* Find the closing quote first. */
    while (end < e && *end != '"') end += (*end == '\\') ? 2 : 1;
    if (end >= e) return dec_fail(d, d->p, "unterminated string");
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, (size_t)(end - start));   /* ... buf */
    char *o = out;
    const char *p = start;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (plain[c]) { *o++ = (char)c; p++; continue; }
        if (c >= 0x80) {
            size_t k = utf8_seq((const unsigned char *)p, (const unsigned char *)end);
            if (!k) return dec_fail(d, p, "invalid UTF-8 in string");
            memcpy(o, p, k); o += k; p += k;
            continue;
        }
        if (c < 0x20) return dec_fail(d, p, "control character 0x%02X in string", c);
        /* c == '\\' (a bare '"' cannot occur before end) */
        switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            int cp = (end - p >= 6) ? hex4(p + 2) : -1;
            if (cp < 0) return dec_fail(d, p, "bad \\u escape (need 4 hex digits)");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return dec_fail(d, p, "lone low surrogate \\u%04X", (unsigned)cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = (end - p >= 12 && p[6] == '\\' && p[7] == 'u') ? hex4(p + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return dec_fail(d, p, "high surrogate \\u%04X not followed by a low one",
                                    (unsigned)cp);
                o = put_utf8(o, 0x10000u + (((unsigned)cp - 0xD800u) << 10) +
                                    ((unsigned)lo - 0xDC00u));
                p += 12;
                continue;
            }
            o = put_utf8(o, (unsigned)cp);
            p += 6;
            continue;
        }
        default:
            if (p + 1 >= end) return dec_fail(d, p, "bad escape at end of string");
            return dec_fail(d, p, "bad escape '\\%c'", p[1]);
        }
        p += 2;
    }
    luaL_pushresultsize(&b, (size_t)(o - out));                     /* ... str */
    d->p = end + 1;
    return 1;
}

/* d->p at the opening quote. Pushes the string. */
/* Eight bytes at a time while none is '"', '\\', a control character or non-ASCII (the
 * bytes plain[] would stop at): perf, issue 13 — the byte loop was the decoder's top cost. */
static inline const unsigned char *skip_plain8(const unsigned char *p, const unsigned char *e) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (e - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t stop = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x;
        stop &= highs;                              /* x itself: non-ASCII, for the UTF-8 check */
        if (stop) break;
        p += 8;
    }
    return p;
}

/* The string cache of a recording's reader (jsonl.c): a table of STR_SLOTS strings, the last
 * one seen in each slot (picked by a hash of the bytes). A recording repeats the same keys,
 * market ids and prices line after line; a market id (66 bytes) is a long string, which Lua
 * neither interns nor hashes once: pushed anew it was a malloc, its hash (at every table it
 * is looked up in) and a memcmp per look-up; pushed from here it is the same object each
 * time (perf, issue 12; callgrind: -0.8k instructions a no-op event). Strings longer than
 * STR_CACHED, or short enough for Lua to intern (caching those cost more than it saved), are
 * pushed as ever. */
#define STR_SLOTS 256
#define STR_CACHED 80
#define STR_SHORT 40  /* LUAI_MAXSHORTLEN: shorter strings are interned by Lua, which is cheaper than the cache */

static void push_str(Dec *d, const char *s, size_t n) {
    lua_State *L = d->L;
    if (!d->cache || n > STR_CACHED || n <= STR_SHORT) {
        lua_pushlstring(L, s, n);                                   /* ... str */
        return;
    }
    uint32_t h = 2166136261u ^ (uint32_t)n;
    size_t k = n < 8 ? n : 8;
    for (size_t i = 0; i < k; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    for (size_t i = n - k; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    lua_Integer slot = (lua_Integer)(h % STR_SLOTS) + 1;
    if (lua_rawgeti(L, d->cache, slot) == LUA_TSTRING) {           /* ... str|nil */
        size_t cn;
        const char *c = lua_tolstring(L, -1, &cn);
        if (cn == n && memcmp(c, s, n) == 0) return;               /* ... str */
    }
    lua_pop(L, 1);
    lua_pushlstring(L, s, n);                                       /* ... str */
    lua_pushvalue(L, -1);
    lua_rawseti(L, d->cache, slot);                                 /* ... str */
}

static int dec_string(Dec *d) {
    const unsigned char *p = (const unsigned char *)d->p + 1, *e = (const unsigned char *)d->e;
    for (;;) {
        p = skip_plain8(p, e);
        while (p < e && plain[*p]) p++;
        if (p >= e) return dec_fail(d, d->p, "unterminated string");
        if (*p == '"') break;
        if (*p == '\\') return dec_string_escaped(d, (const char *)p);
        if (*p < 0x20) return dec_fail(d, (const char *)p, "control character 0x%02X in string", *p);
        size_t k = utf8_seq(p, e);
        if (!k) return dec_fail(d, (const char *)p, "invalid UTF-8 in string");
        p += k;
    }
    push_str(d, d->p + 1, (size_t)((const char *)p - d->p - 1));             /* ... str */
    d->p = (const char *)p + 1;
    return 1;
}

#define ISDIGIT(c) ((unsigned)((c) - '0') < 10u)

/* Exact powers of ten as doubles (10^22 is the last one a double holds exactly). */
static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Numbers: integer syntax that fits int64 becomes a Lua integer, anything else a float. */
static int dec_number(Dec *d) {
    lua_State *L = d->L;
    const char *start = d->p, *p = d->p, *e = d->e;
    int neg = 0, isint = 1, big = 0;
    uint64_t acc = 0;
    /* the float fast path: all significant digits in sig (at most 15 of them), the value
     * being sig * 10^exp10 */
    uint64_t sig = 0;
    int nsig = 0, exp10 = 0;
    if (*p == '-') { neg = 1; p++; }
    if (p >= e) return dec_eof(d);
    if (*p == '0') {
        p++;
        if (p < e && ISDIGIT(*p)) return dec_fail(d, p, "leading zero in number");
    } else if (ISDIGIT(*p)) {
        for (; p < e && ISDIGIT(*p); p++) {
            if (acc > (UINT64_MAX - 9) / 10) big = 1;   /* beyond int64 either way */
            else acc = acc * 10 + (uint64_t)(*p - '0');
            nsig++;
        }
        sig = acc;
    } else {
        d->p = p;
        return dec_unexpected(d, "expected a digit");
    }
    if (p < e && *p == '.') {
        isint = 0;
        p++;
        if (p >= e) { d->p = p; return dec_eof(d); }
        if (!ISDIGIT(*p)) { d->p = p; return dec_unexpected(d, "expected a digit after '.'"); }
        for (; p < e && ISDIGIT(*p); p++) {
            if (nsig == 0 && *p == '0') { exp10--; continue; }   /* leading zeros of 0.00x */
            if (nsig < 16) sig = sig * 10 + (uint64_t)(*p - '0');
            nsig++;
            exp10--;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        isint = 0;
        p++;
        int eneg = 0, ev = 0;
        if (p < e && (*p == '+' || *p == '-')) { eneg = *p == '-'; p++; }
        if (p >= e) { d->p = p; return dec_eof(d); }
        if (!ISDIGIT(*p)) { d->p = p; return dec_unexpected(d, "expected a digit in exponent"); }
        for (; p < e && ISDIGIT(*p); p++)
            if (ev < 10000) ev = ev * 10 + (*p - '0');
        exp10 += eneg ? -ev : ev;
    }
    d->p = p;
    if (isint && !big) {
        if (!neg && acc <= (uint64_t)LUA_MAXINTEGER) { lua_pushinteger(L, (lua_Integer)acc); return 1; }
        if (neg && acc <= (uint64_t)LUA_MAXINTEGER) { lua_pushinteger(L, -(lua_Integer)acc); return 1; }
        if (neg && acc == (uint64_t)LUA_MAXINTEGER + 1) { lua_pushinteger(L, LUA_MININTEGER); return 1; }
    }
    /* Clinger's fast path: a significand below 2^53 and a power of ten a double holds exactly
     * make one correctly rounded operation, so the result is strtod's, bit for bit (perf: the
     * replay's profile had strtod and localeconv at ~4% of decoding a price record). */
    if (!isint && !big && nsig <= 15 && exp10 >= -22 && exp10 <= 22) {
        double v = (double)sig;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
        lua_pushnumber(L, (lua_Number)(neg ? -v : v));                  /* ... num */
        return 1;
    }
    /* Float: strtod on a NUL-terminated copy (the input need not be terminated), with the
     * locale's decimal point swapped in as Lua itself does. */
    size_t len = (size_t)(p - start);
    char local[64], *buf = local;
    if (len >= sizeof local) buf = lua_newuserdatauv(L, len + 1, 0);    /* ... ud */
    memcpy(buf, start, len);
    buf[len] = '\0';
    if (!d->dp) d->dp = localeconv()->decimal_point[0];
    if (d->dp != '.') {
        char *dot = strchr(buf, '.');
        if (dot) *dot = d->dp;
    }
    double v = strtod(buf, NULL);
    if (buf != local) lua_pop(L, 1);                                     /* ... */
    lua_pushnumber(L, (lua_Number)v);                                    /* ... num */
    return 1;
}

static int dec_literal(Dec *d, const char *lit, size_t n) {
    if ((size_t)(d->e - d->p) < n || memcmp(d->p, lit, n) != 0) {
        /* Point at the first byte that differs. */
        const char *p = d->p;
        size_t i = 0;
        while (p + i < d->e && i < n && p[i] == lit[i]) i++;
        if (p + i >= d->e) return dec_eof(d);
        d->p = p + i;
        return dec_unexpected(d, i ? "bad literal" : "expected a value");
    }
    d->p += n;
    return 1;
}

static int dec_enter(Dec *d) {
    if (++d->depth > DEC_MAX_DEPTH)
        return dec_fail(d, d->p, "nesting deeper than %d levels", DEC_MAX_DEPTH);
    if (!lua_checkstack(d->L, 4)) return dec_fail(d, d->p, "Lua stack exhausted");
    return 1;
}

/* Values of an array or pairs of an object are pushed on the stack in runs of up to
 * DEC_RUN and then stored into a table created at its final size (perf, issue 13: the
 * profile showed lua_rawset's rehashing as the decoder's largest cost). */
#define DEC_RUN 32

/* Stores the n values above the table at t (an absolute index) as items first+1..first+n. */
static void dec_flush_array(lua_State *L, int t, int n, lua_Integer first) {
    for (int i = n; i > 0; i--) lua_rawseti(L, t, first + i);   /* pops the last value */
}

/* d->p at '['. Pushes the array (with the shared array metatable). */
static int dec_array(Dec *d) {
    lua_State *L = d->L;
    if (!dec_enter(d)) return 0;
    d->p++;
    int t = lua_gettop(L) + 1;                      /* where the array goes */
    skip_ws(d);
    if (d->p < d->e && *d->p == ']') {
        d->p++;
        d->depth--;
        lua_createtable(L, 0, 0);                   /* ... arr */
        lua_pushvalue(L, d->mtidx);
        lua_setmetatable(L, -2);
        return 1;
    }
    int made = 0, run = 0;
    lua_Integer stored = 0;
    for (;;) {
        if (!lua_checkstack(L, 4)) return dec_fail(d, d->p, "Lua stack exhausted");
        if (!dec_value(d)) return 0;                /* ... [arr] vals val */
        if (++run == DEC_RUN) {
            if (!made) {
                lua_createtable(L, DEC_RUN * 2, 0);
                lua_insert(L, t);
                made = 1;
            }
            dec_flush_array(L, t, run, stored);
            stored += run;
            run = 0;
        }
        skip_ws(d);
        if (d->p >= d->e) return dec_eof(d);
        if (*d->p == ']') { d->p++; break; }
        if (*d->p != ',') return dec_unexpected(d, "expected ',' or ']'");
        d->p++;
        skip_ws(d);
        if (d->p < d->e && *d->p == ']') return dec_fail(d, d->p, "trailing comma in array");
    }
    if (!made) {
        lua_createtable(L, run, 0);
        lua_insert(L, t);
    }
    dec_flush_array(L, t, run, stored);             /* ... arr */
    lua_pushvalue(L, d->mtidx);
    lua_setmetatable(L, -2);
    d->depth--;
    return 1;
}

/* Stores the n key/value pairs above the table at t in order (later duplicates win). */
static void dec_flush_object(lua_State *L, int t, int n) {
    for (int i = 0; i < n; i++) {
        lua_pushvalue(L, t + 1 + 2 * i);
        lua_pushvalue(L, t + 2 + 2 * i);
        lua_rawset(L, t);
    }
    lua_settop(L, t);
}

/* d->p at '{'. Pushes the object (a plain table; later duplicate keys win). */
static int dec_object(Dec *d) {
    lua_State *L = d->L;
    if (!dec_enter(d)) return 0;
    d->p++;
    int t = lua_gettop(L) + 1;                      /* where the object goes */
    skip_ws(d);
    if (d->p < d->e && *d->p == '}') {
        d->p++;
        d->depth--;
        lua_createtable(L, 0, 0);                   /* ... obj */
        return 1;
    }
    int made = 0, run = 0;
    for (;;) {
        if (!lua_checkstack(L, 6)) return dec_fail(d, d->p, "Lua stack exhausted");
        if (d->p >= d->e) return dec_eof(d);
        if (*d->p != '"') return dec_unexpected(d, "expected a string key");
        if (!dec_string(d)) return 0;               /* ... [obj] pairs key */
        skip_ws(d);
        if (d->p >= d->e) return dec_eof(d);
        if (*d->p != ':') return dec_unexpected(d, "expected ':'");
        d->p++;
        if (!dec_value(d)) return 0;                /* ... [obj] pairs key val */
        if (++run == DEC_RUN) {
            if (!made) {
                lua_createtable(L, 0, DEC_RUN * 2);
                lua_insert(L, t);
                made = 1;
            }
            dec_flush_object(L, t, run);
            run = 0;
        }
        skip_ws(d);
        if (d->p >= d->e) return dec_eof(d);
        if (*d->p == '}') { d->p++; break; }
        if (*d->p != ',') return dec_unexpected(d, "expected ',' or '}'");
        d->p++;
        skip_ws(d);
        if (d->p < d->e && *d->p == '}') return dec_fail(d, d->p, "trailing comma in object");
    }
    if (!made) {
        lua_createtable(L, 0, run);
        lua_insert(L, t);
    }
    dec_flush_object(L, t, run);                    /* ... obj */
    d->depth--;
    return 1;
}

/* A price record's objects (d->cache set): the table is made first, sized like the last
 * object at the same depth (a recording's messages have the same shape line after line),
 * and each pair stored as it is read. perf, issue 12 (callgrind): dec_object's stack runs
 * (the table rotated under its pairs, each pair copied once more to be stored) were ~1.5k
 * instructions of a price line's ~15k. The same values and the same later-duplicate-wins
 * rule; only the table's initial size differs from dec_object's when a line's shape does. */

static int dec_object_hinted(Dec *d) {
    lua_State *L = d->L;
    if (!dec_enter(d)) return 0;
    d->p++;
    int slot = d->depth < PS_JSON_HINTS ? d->depth : PS_JSON_HINTS - 1;
    lua_createtable(L, 0, d->hints[slot]);          /* ... obj */
    int t = lua_gettop(L), n = 0;
    skip_ws(d);
    if (d->p < d->e && *d->p == '}') {
        d->p++;
        d->depth--;
        return 1;
    }
    for (;;) {
        if (!lua_checkstack(L, 6)) return dec_fail(d, d->p, "Lua stack exhausted");
        if (d->p >= d->e) return dec_eof(d);
        if (*d->p != '"') return dec_unexpected(d, "expected a string key");
        if (!dec_string(d)) return 0;               /* ... obj key */
        skip_ws(d);
        if (d->p >= d->e) return dec_eof(d);
        if (*d->p != ':') return dec_unexpected(d, "expected ':'");
        d->p++;
        if (!dec_value(d)) return 0;                /* ... obj key val */
        lua_rawset(L, t);                           /* ... obj */
        n++;
        skip_ws(d);
        if (d->p >= d->e) return dec_eof(d);
        if (*d->p == '}') { d->p++; break; }
        if (*d->p != ',') return dec_unexpected(d, "expected ',' or '}'");
        d->p++;
        skip_ws(d);
        if (d->p < d->e && *d->p == '}') return dec_fail(d, d->p, "trailing comma in object");
    }
    d->hints[slot] = n;
    d->depth--;
    return 1;
}

static int dec_value(Dec *d) {
    skip_ws(d);
    if (d->p >= d->e) return dec_eof(d);
    switch (*d->p) {
    case '{': return d->cache ? dec_object_hinted(d) : dec_object(d);
    case '[': return dec_array(d);
    case '"': return dec_string(d);
    case 't':
        if (!dec_literal(d, "true", 4)) return 0;
        lua_pushboolean(d->L, 1);
        return 1;
    case 'f':
        if (!dec_literal(d, "false", 5)) return 0;
        lua_pushboolean(d->L, 0);
        return 1;
    case 'n':
        if (!dec_literal(d, "null", 4)) return 0;
        ps_json_pushnull(d->L);
        return 1;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return dec_number(d);
    default:
        return dec_unexpected(d, "expected a value");
    }
}

int ps_json_push(lua_State *L, const char *s, size_t n, char *err, size_t errlen) {
    int top = lua_gettop(L);
    Dec d;
    d.L = L; d.s = d.p = s; d.e = s + n; d.err = err; d.errlen = errlen;
    d.depth = 0; d.dp = 0; d.cache = 0; d.hints = NULL;
    if (err && errlen) err[0] = '\0';
    if (!lua_checkstack(L, 6)) return dec_fail(&d, s, "Lua stack exhausted");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);   /* ... mt */
    d.mtidx = top + 1;
    if (!dec_value(&d)) goto fail;                      /* ... mt val */
    skip_ws(&d);
    if (d.p < d.e) { dec_unexpected(&d, "expected end of input after the value"); goto fail; }
    lua_remove(L, d.mtidx);                             /* ... val */
    return 1;
fail:
    lua_settop(L, top);
    return 0;
}

/* The raw bytes of a string at d->p (the opening quote) when it holds no escape: sets *s,
 * *n and moves past it; 0 (cursor unchanged) otherwise. For comparing keys without pushing. */
static int raw_string(Dec *d, const char **s, size_t *n) {
    const char *p = d->p + 1, *e = d->e;
    const char *q = memchr(p, '"', (size_t)(e - p));
    if (!q) return 0;
    for (const char *c = p; c < q; c++)
        if (!plain[(unsigned char)*c]) return 0;
    *s = p;
    *n = (size_t)(q - p);
    d->p = q + 1;
    return 1;
}

#define KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), (n)) == 0)

/* The shape of a recording's price line, {"type":"price","t":T,"msg":{...}} in any key order,
 * decoded without the record table. The array metatable is at top + 1; on success it is
 * replaced by t and msg (2 is returned). Anything else (other or
 * repeated keys, escapes in a key): 0 with the stack as it was, and the caller decodes the
 * text the ordinary way. */
static int dec_price_record(Dec *d, int top) {
    lua_State *L = d->L;
    int have_type = 0, have_t = 0, have_msg = 0;
    skip_ws(d);
    if (d->p >= d->e || *d->p != '{') return 0;
    d->p++;
    d->depth = 1;                                       /* the record's own level, as ps_json_push counts */
    lua_settop(L, top + 3);                             /* ... mt t msg */
    for (;;) {
        const char *k;
        size_t kn;
        skip_ws(d);
        if (d->p >= d->e || *d->p != '"' || !raw_string(d, &k, &kn)) goto no;
        skip_ws(d);
        if (d->p >= d->e || *d->p != ':') goto no;
        d->p++;
        skip_ws(d);
        if (d->p >= d->e) goto no;
        if (KEY_IS(k, kn, "type") && !have_type) {
            const char *v;
            size_t vn;
            if (*d->p != '"' || !raw_string(d, &v, &vn) || !KEY_IS(v, vn, "price")) goto no;
            have_type = 1;
        } else if (KEY_IS(k, kn, "t") && !have_t) {
            if (*d->p != '-' && !ISDIGIT(*d->p)) goto no;
            if (!dec_number(d)) goto no;                /* ... mt t msg num */
            lua_replace(L, top + 2);                    /* ... mt t msg */
            have_t = 1;
        } else if (KEY_IS(k, kn, "msg") && !have_msg) {
            if (*d->p != '{') goto no;
            if (!(d->cache ? dec_object_hinted(d) : dec_object(d))) goto no; /* ... mt t msg obj */
            lua_replace(L, top + 3);                    /* ... mt t msg */
            have_msg = 1;
        } else {
            goto no;
        }
        skip_ws(d);
        if (d->p >= d->e) goto no;
        if (*d->p == '}') { d->p++; break; }
        if (*d->p != ',') goto no;
        d->p++;
    }
    skip_ws(d);
    if (d->p < d->e || !(have_type && have_t && have_msg)) goto no;
    lua_remove(L, top + 1);                             /* ... t msg */
    return 2;
no:
    lua_settop(L, top);
    return 0;
}

int ps_json_push_record(lua_State *L, const char *s, size_t n, int cache, int *hints, char *err, size_t errlen) {
    int top = lua_gettop(L);
    Dec d;
    d.L = L; d.s = d.p = s; d.e = s + n; d.err = NULL; d.errlen = 0;
    d.depth = 0; d.dp = 0; d.cache = cache && hints ? lua_absindex(L, cache) : 0; d.hints = hints;
    if (!lua_checkstack(L, 8)) return ps_json_push(L, s, n, err, errlen);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);   /* ... mt */
    d.mtidx = top + 1;
    if (dec_price_record(&d, top)) return 2;            /* ... t msg */
    lua_settop(L, top);                                 /* ... */
    return ps_json_push(L, s, n, err, errlen);          /* errors and their byte positions: as ever */
}

/* core.json_decode(s) -> value | nil, message */
static int l_json_decode(lua_State *L) {
    size_t n;
    char err[160];
    if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string");
    const char *s = lua_tolstring(L, 1, &n);
    if (ps_json_push(L, s, n, err, sizeof err)) return 1;
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
}

/* ======================================================================================= */
/* Encoder                                                                                  */
/* ======================================================================================= */

typedef struct {
    lua_State *L;
    char *buf;
    size_t len, cap;
    int bufidx;        /* stack slot holding the scratch userdata once buf outgrows local */
    int mtidx;         /* stack slot of the array metatable */
    int sort_keys;
    int depth;         /* tables currently open */
    int nseg;          /* valid entries of seg: the path of the value being encoded */
    const void *open[ENC_MAX_DEPTH];    /* tables on the current path, for cycle detection */
    struct { int keyidx; lua_Integer index; } seg[ENC_MAX_DEPTH];
    char local[512];
} Enc;

/* Raises "json_encode: <what> (at $.path[1].to)". Never returns. */
static int enc_error(Enc *en, const char *fmt, ...) {
    lua_State *L = en->L;
    char path[256], *o = path, *pe = path + sizeof path - 8;
    *o++ = '$';
    for (int i = 0; i < en->nseg && o < pe; i++) {
        int w;
        if (en->seg[i].keyidx) {
            size_t kl;
            const char *k = lua_tolstring(L, en->seg[i].keyidx, &kl);
            int ident = kl > 0 && kl <= 40 && !ISDIGIT(k[0]);
            for (size_t j = 0; ident && j < kl; j++)
                ident = (k[j] == '_' || ISDIGIT(k[j]) || ((k[j] | 0x20) >= 'a' && (k[j] | 0x20) <= 'z'));
            if (ident) w = snprintf(o, (size_t)(pe - o), ".%s", k);
            else w = snprintf(o, (size_t)(pe - o), "[\"%.*s%s\"]", kl > 40 ? 40 : (int)kl, k,
                              kl > 40 ? "..." : "");
        } else {
            w = snprintf(o, (size_t)(pe - o), "[%lld]", (long long)en->seg[i].index);
        }
        if (w < 0 || w >= pe - o) { o = pe; break; }
        o += w;
    }
    if (o >= pe) { memcpy(pe, "...", 3); o = pe + 3; }
    *o = '\0';
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return luaL_error(L, "json_encode: %s (at %s)", lua_tostring(L, -1), path);
}

/* Makes room for extra more bytes; returns the write position. */
static char *enc_reserve(Enc *en, size_t extra) {
    if (en->cap - en->len >= extra) return en->buf + en->len;
    size_t cap = en->cap;
    while (cap - en->len < extra) {
        if (cap > ((size_t)-1) / 2) luaL_error(en->L, "json_encode: output too large");
        cap *= 2;
    }
    char *nb = lua_newuserdatauv(en->L, cap, 0);       /* ... newbuf */
    memcpy(nb, en->buf, en->len);
    lua_replace(en->L, en->bufidx);                    /* ... (old buffer is garbage) */
    en->buf = nb;
    en->cap = cap;
    return nb + en->len;
}

static inline void enc_char(Enc *en, char c) {
    if (en->len == en->cap) enc_reserve(en, 1);
    en->buf[en->len++] = c;
}

static inline void enc_bytes(Enc *en, const char *s, size_t n) {
    memcpy(enc_reserve(en, n), s, n);
    en->len += n;
}

static void enc_string(Enc *en, const char *s, size_t n) {
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    enc_char(en, '"');
    while (p < e) {
        const unsigned char *run = p;
        for (;;) {
            p = skip_plain8(p, e);                     /* perf: the front door's encode */
            while (p < e && plain[*p]) p++;
            if (p < e && *p >= 0x80) {
                size_t k = utf8_seq(p, e);
                if (!k) enc_error(en, "string is not valid UTF-8 (byte %d)", (int)(p - (const unsigned char *)s) + 1);
                p += k;
                continue;
            }
            break;
        }
        if (p > run) enc_bytes(en, (const char *)run, (size_t)(p - run));
        if (p >= e) break;
        char *o = enc_reserve(en, 6);
        unsigned char c = *p++;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = hexd[c >> 4]; *o++ = hexd[c & 15];
        }
        en->len = (size_t)(o - en->buf);
    }
    enc_char(en, '"');
}

static void enc_integer(Enc *en, lua_Integer v) {
    char tmp[24], *o = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do { *--o = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) *--o = '-';
    enc_bytes(en, o, (size_t)(tmp + sizeof tmp - o));
}

/* Floats: integral values below 2^63 print as plain integers; others take the shortest of
 * %.15g/%.16g/%.17g that reads back exactly (so 0.1 prints as 0.1, and every value
 * round-trips). */
static void enc_float(Enc *en, lua_Number x) {
    if (isnan(x) || isinf(x)) enc_error(en, "cannot encode NaN or infinity");
    if (x == floor(x) && fabs(x) < 9.2233720368547758e18) {
        enc_integer(en, (lua_Integer)x);
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)x);
        if (prec == 17 || strtod(tmp, NULL) == (double)x) break;
    }
    char dp = localeconv()->decimal_point[0];
    if (dp != '.') {
        char *q = strchr(tmp, dp);
        if (q) *q = '.';
    }
    enc_bytes(en, tmp, strlen(tmp));
}

static void enc_value(Enc *en, int idx);

typedef struct { const char *s; size_t n; } KeyRef;

static int keyref_cmp(const void *a, const void *b) {
    const KeyRef *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    if (c) return c;
    return (x->n > y->n) - (x->n < y->n);
}

static void enc_table(Enc *en, int idx) {
    lua_State *L = en->L;
    const void *self = lua_topointer(L, idx);
    for (int i = 0; i < en->depth; i++)
        if (en->open[i] == self) enc_error(en, "cyclic table");
    if (en->depth >= ENC_MAX_DEPTH) enc_error(en, "nesting deeper than %d levels", ENC_MAX_DEPTH);
    luaL_checkstack(L, 6, "json_encode");
    int d = en->depth++;
    en->open[d] = self;

    int is_array_mt = 0;
    if (lua_getmetatable(L, idx)) {                         /* ... mt */
        is_array_mt = lua_rawequal(L, -1, en->mtidx);
        lua_pop(L, 1);                                      /* ... */
    }

    /* Pass 1: classify the keys. */
    lua_Integer nint = 0, nstr = 0, minint = 0, maxint = 0, firstint = 0;
    lua_pushnil(L);                                         /* ... nil */
    while (lua_next(L, idx)) {                              /* ... k v */
        lua_pop(L, 1);                                      /* ... k */
        int kt = lua_type(L, -1);
        if (kt == LUA_TSTRING) {
            nstr++;
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -1)) {
            lua_Integer k = lua_tointeger(L, -1);
            if (nint++ == 0) firstint = minint = maxint = k;
            else { if (k < minint) minint = k; if (k > maxint) maxint = k; }
        } else if (kt == LUA_TNUMBER) {
            enc_error(en, "table has non-integer number key %s", lua_tostring(L, -1));
        } else {
            enc_error(en, "table has a key of type %s", luaL_typename(L, -1));
        }
    }                                                       /* ... */

    if (nint == 0 && nstr == 0) {
        enc_bytes(en, is_array_mt ? "[]" : "{}", 2);
    } else if (nstr == 0) {
        if (minint < 1) enc_error(en, "sparse array: key %I is outside 1..%I", minint, nint);
        if (maxint != nint) enc_error(en, "sparse array: key %I is outside 1..%I", maxint, nint);
        enc_char(en, '[');
        for (lua_Integer i = 1; i <= nint; i++) {
            if (i > 1) enc_char(en, ',');
            lua_rawgeti(L, idx, i);                         /* ... v */
            en->seg[d].keyidx = 0;
            en->seg[d].index = i;
            en->nseg = d + 1;
            enc_value(en, lua_gettop(L));
            lua_pop(L, 1);                                  /* ... */
        }
        enc_char(en, ']');
    } else if (nint > 0) {
        enc_error(en, "mixed table: integer key %I alongside string keys", firstint);
    } else if (is_array_mt) {
        enc_error(en, "table marked as an array (array_mt) has string keys");
    } else if (!en->sort_keys) {
        int first = 1;
        enc_char(en, '{');
        lua_pushnil(L);                                     /* ... nil */
        while (lua_next(L, idx)) {                          /* ... k v */
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);      /* k is a string: no conversion */
            if (!first) enc_char(en, ',');
            first = 0;
            en->seg[d].keyidx = lua_gettop(L) - 1;
            en->nseg = d + 1;
            enc_string(en, k, kl);
            enc_char(en, ':');
            enc_value(en, lua_gettop(L));
            lua_pop(L, 1);                                  /* ... k */
        }                                                   /* ... */
        enc_char(en, '}');
    } else {
        KeyRef *keys = lua_newuserdatauv(L, sizeof(KeyRef) * (size_t)nstr, 0);  /* ... keys */
        lua_Integer nk = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {                          /* ... keys k v */
            lua_pop(L, 1);                                  /* ... keys k */
            keys[nk].s = lua_tolstring(L, -1, &keys[nk].n); /* kept alive by the table */
            nk++;
        }                                                   /* ... keys */
        qsort(keys, (size_t)nk, sizeof *keys, keyref_cmp);
        enc_char(en, '{');
        for (lua_Integer i = 0; i < nk; i++) {
            if (i) enc_char(en, ',');
            lua_pushlstring(L, keys[i].s, keys[i].n);       /* ... keys k */
            en->seg[d].keyidx = lua_gettop(L);
            en->nseg = d + 1;
            enc_string(en, keys[i].s, keys[i].n);
            enc_char(en, ':');
            lua_pushvalue(L, -1);
            lua_rawget(L, idx);                             /* ... keys k v */
            enc_value(en, lua_gettop(L));
            lua_pop(L, 2);                                  /* ... keys */
        }
        enc_char(en, '}');
        lua_pop(L, 1);                                      /* ... */
    }
    en->nseg = d;
    en->depth = d;
}

static void enc_value(Enc *en, int idx) {
    lua_State *L = en->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        enc_error(en, "cannot encode nil (use polysim.null for JSON null)");
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) enc_bytes(en, "true", 4);
        else enc_bytes(en, "false", 5);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) enc_integer(en, lua_tointeger(L, idx));
        else enc_float(en, lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        enc_string(en, s, n);
        break;
    }
    case LUA_TTABLE:
        enc_table(en, idx);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) enc_bytes(en, "null", 4);
        else enc_error(en, "cannot encode a light userdata");
        break;
    case LUA_TUSERDATA:
        /* Values with __tostring (polysim.Decimal) travel as their exact string form. */
        if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {   /* ... f */
            size_t n;
            lua_pop(L, 1);                                           /* ... */
            const char *s = luaL_tolstring(L, idx, &n);              /* ... s */
            enc_string(en, s, n);
            lua_pop(L, 1);                                           /* ... */
        } else {
            enc_error(en, "cannot encode a %s without __tostring", luaL_typename(L, idx));
        }
        break;
    default:
        enc_error(en, "cannot encode a %s", luaL_typename(L, idx));
    }
}

void ps_json_encode(lua_State *L, int idx, int sort_keys) {
    Enc en;
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 8, "json_encode");
    en.L = L;
    en.buf = en.local;
    en.len = 0;
    en.cap = sizeof en.local;
    en.sort_keys = sort_keys;
    en.depth = en.nseg = 0;
    /* perf (issue 13): the buffer an earlier encode grew is reused (growing a fresh one from
     * 512 bytes was two userdata allocations and copies per front-door answer). It is taken
     * out of the registry while in use, so an encode nested in a __tostring, or one that
     * raised, simply makes its own. */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &scratch_key) == LUA_TUSERDATA) { /* ... slot */
        en.buf = lua_touserdata(L, -1);
        en.cap = lua_rawlen(L, -1);
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &scratch_key);
    }
    en.bufidx = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);    /* ... slot mt */
    en.mtidx = en.bufidx + 1;
    enc_value(&en, idx);
    lua_pushlstring(L, en.buf, en.len);                  /* ... slot mt str */
    if (en.buf != en.local && en.cap <= SCRATCH_KEEP) {  /* give it back */
        lua_pushvalue(L, en.bufidx);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &scratch_key);
    }
    lua_replace(L, en.bufidx);                           /* ... str mt */
    lua_pop(L, 1);                                       /* ... str */
}

/* core.json_encode(v [, {sort_keys=bool}]) -> string; raises on unencodable values. */
static int l_json_encode(lua_State *L) {
    int sort_keys = 0;
    luaL_checkany(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 2)) {                         /* ... k v */
            if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "sort_keys") == 0) {
                luaL_argexpected(L, lua_isboolean(L, -1), 2, "boolean sort_keys");
                sort_keys = lua_toboolean(L, -1);
            } else {
                lua_pushvalue(L, -2);
                return luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'",
                                                           luaL_tolstring(L, -1, NULL)));
            }
            lua_pop(L, 1);                               /* ... k */
        }
    }
    lua_settop(L, 1);
    ps_json_encode(L, 1, sort_keys);
    return 1;
}

/* core.array([t]) -> t, marked as a JSON array (so an empty one encodes as []). */
static int l_array(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);                                 /* t */
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);    /* t mt */
    if (lua_getmetatable(L, 1)) {                        /* t mt oldmt */
        luaL_argcheck(L, lua_rawequal(L, -1, -2), 1, "table already has another metatable");
        lua_pop(L, 1);                                   /* t mt */
    }
    lua_setmetatable(L, 1);                              /* t */
    return 1;
}

/* __tostring of every light userdata (Lua has one metatable per basic type): the null
 * reads "null"; any other keeps Lua's own "userdata: 0x..." form. */
static int l_lightuserdata_tostring(lua_State *L) {
    const void *p = lua_touserdata(L, 1);
    if (p == NULL) lua_pushliteral(L, "null");
    else lua_pushfstring(L, "userdata: %p", p);
    return 1;
}

/* Gives light userdata a __tostring unless something else already did (that one stays: the
 * metatable is shared with every other library in the state). */
static void set_null_tostring(lua_State *L) {
    ps_json_pushnull(L);                                 /* null */
    if (!lua_getmetatable(L, -1)) lua_newtable(L);       /* null mt */
    if (lua_getfield(L, -1, "__tostring") == LUA_TNIL) { /* null mt f */
        lua_pop(L, 1);
        lua_pushcfunction(L, l_lightuserdata_tostring);
        lua_setfield(L, -2, "__tostring");               /* null mt */
        lua_setmetatable(L, -2);                         /* null */
    } else {
        lua_pop(L, 2);                                   /* null */
    }
    lua_pop(L, 1);
}

void ps_json_open(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"json_decode", l_json_decode},
        {"json_encode", l_json_encode},
        {"array", l_array},
        {NULL, NULL},
    };
    static pthread_once_t once = PTHREAD_ONCE_INIT;     /* written once, for all threads */
    pthread_once(&once, init_tables);
    luaL_setfuncs(L, funcs, 0);                          /* core */
    /* Reuse the array metatable if the module is loaded again into this state (hot reload):
     * tables decoded earlier must stay recognisable as arrays. */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) != LUA_TTABLE) {   /* core x */
        lua_pop(L, 1);
        lua_newtable(L);                                 /* core mt */
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    }
    lua_setfield(L, -2, "array_mt");                     /* core */
    ps_json_pushnull(L);
    lua_setfield(L, -2, "null");                         /* core */
    set_null_tostring(L);
}
