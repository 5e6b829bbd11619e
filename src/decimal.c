/* decimal.c: exact decimal numbers for money (core.decimal, public as polysim.decimal).
 *
 * A value is sign + magnitude + scale: value = (neg ? -1 : 1) * m / 10^scale, with
 * m < 10^38 (38 significant digits) and 0 <= scale <= 38, computed in unsigned __int128.
 * Every result is checked; one that does not fit raises "decimal overflow", never wraps.
 * Zero is never negative, so "-0" prints as "0".
 *
 * Shape follows LPeg: the value lives inside the userdata (no __gc), operators are
 * metamethods, the module table is the metatable's __index (d:add(x) == decimal.add(d, x)),
 * and every operand goes through one coercion, todecimal(). */
/*** Exact decimal numbers for money: `polysim.decimal` (also `d:method(...)` on a value).
 *
 *    local D = polysim.decimal
 *    local cost = D"6.50" + D"0.09"                 -- exact: 6.59
 *    print(D.div("1", "3", 4, "half_even"))         -- 0.3333
 *    print(D"2.675":round(2, "half_up"), D"0.1" + "0.2" == D"0.3")
 *
 * A value has up to 38 significant digits and 0 to 38 decimal places; values are immutable.
 * Every argument called `x`, `a`, `b` or `d` below may be a decimal, a decimal string
 * (`"-12.50"`, `"1e-3"`), a Lua integer, or a float whose binary value is exactly a decimal
 * within 18 places (`0.5`; `0.68` is refused: pass `"0.68"`); anything else raises an
 * argument error. A result that does not fit raises `"decimal overflow in <op>: ..."`.
 *
 * Operators: `+ - *` and unary `-` are exact; `== < <=` compare values (`D"1.50" == D"1.5"`;
 * a decimal never equals a string or number: compare `D(x) == D(y)`); `..` concatenates the
 * canonical text; `/` and `//` raise (a division must name its scale and rounding: `div`).
 * `tostring(d)` is the canonical text: no exponent, trailing zeros kept as computed
 * (`D"1.50"` prints `1.50`), never `-0`.
 *
 * Rounding modes: `"half_even"` (banker's), `"half_up"`, `"down"` (toward zero), `"up"`
 * (away from zero), `"floor"`, `"ceiling"`.
 * @module polysim.decimal
 */

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define DECIMAL_MT "polysim.Decimal"
#define MAX_DIGITS 38
#define MAX_SCALE 38

__extension__ typedef unsigned __int128 u128;

/* The value as the code works on it. */
typedef struct {
    u128 m;      /* magnitude, < 10^38 */
    int scale;   /* 0..38 */
    int neg;     /* 1 when negative; never set for zero */
} Dec;

/* The value as stored in the userdata: plain 64-bit words, because Lua only guarantees
 * 8-byte alignment for userdata memory and a u128 load there would be misaligned. */
typedef struct {
    uint64_t lo, hi;
    int32_t scale, neg;
} DecBox;

/* Rounding modes, written once (X-macro): enum, names, and the validator come from here. */
#define ROUNDING_MODES(X)        \
    X(HALF_EVEN, "half_even")    \
    X(HALF_UP, "half_up")        \
    X(DOWN, "down")              \
    X(UP, "up")                  \
    X(FLOOR, "floor")            \
    X(CEILING, "ceiling")

enum {
#define X(id, name) R_##id,
    ROUNDING_MODES(X)
#undef X
};

static const char *const mode_names[] = {
#define X(id, name) name,
    ROUNDING_MODES(X)
#undef X
    NULL
};

#define MODE_LIST "half_even, half_up, down, up, floor or ceiling"

static u128 p10[MAX_DIGITS + 1];    /* 10^0 .. 10^38 */
static u128 p5_18;                  /* 5^18 */

static void init_powers(void) {
    p10[0] = 1;
    for (int i = 1; i <= MAX_DIGITS; i++) p10[i] = p10[i - 1] * 10;
    p5_18 = 1;
    for (int i = 0; i < 18; i++) p5_18 *= 5;
}

#define LIMIT (p10[MAX_DIGITS])

/* --------------------------------------------------------------------------------------- */
/* Userdata                                                                                 */
/* --------------------------------------------------------------------------------------- */

static DecBox *testdec(lua_State *L, int idx) {
    return (DecBox *)luaL_testudata(L, idx, DECIMAL_MT);
}

static Dec unbox(const DecBox *b) {
    Dec d;
    d.m = ((u128)b->hi << 64) | b->lo;
    d.scale = b->scale;
    d.neg = b->neg;
    return d;
}

static void pushdec(lua_State *L, Dec d) {
    DecBox *b = lua_newuserdatauv(L, sizeof *b, 0);   /* ... ud */
    if (d.m == 0) d.neg = 0;
    b->lo = (uint64_t)d.m;
    b->hi = (uint64_t)(d.m >> 64);
    b->scale = d.scale;
    b->neg = d.neg;
    luaL_setmetatable(L, DECIMAL_MT);                 /* ... ud */
}

int ps_decimal_isdecimal(lua_State *L, int idx) { return testdec(L, idx) != NULL; }

/* --------------------------------------------------------------------------------------- */
/* Arithmetic on Dec (no Lua calls; failures are reported to the caller)                    */
/* --------------------------------------------------------------------------------------- */

static int mul_ovf(u128 a, u128 b, u128 *out) { return __builtin_mul_overflow(a, b, out); }

/* m * 10^k, failing when it leaves u128 (k may exceed 38 only for m == 0). */
static int scale_up(u128 m, int k, u128 *out) {
    if (m == 0) { *out = 0; return 1; }
    if (k > MAX_DIGITS) return 0;
    return !mul_ovf(m, p10[k], out);
}

/* Removes trailing zeros from the coefficient, lowering the scale, down to min_scale. */
static Dec strip(Dec d, int min_scale) {
    if (d.m == 0) { if (d.scale > min_scale) d.scale = min_scale; return d; }
    while (d.scale > min_scale && d.m % 10 == 0) { d.m /= 10; d.scale--; }
    return d;
}

static int try_add(Dec a, Dec b, Dec *r) {
    int s = a.scale > b.scale ? a.scale : b.scale;
    u128 ma, mb;
    if (!scale_up(a.m, s - a.scale, &ma) || !scale_up(b.m, s - b.scale, &mb)) return 0;
    if (a.neg == b.neg) {
        if (__builtin_add_overflow(ma, mb, &r->m)) return 0;
        r->neg = a.neg;
    } else if (ma >= mb) {
        r->m = ma - mb; r->neg = a.neg;
    } else {
        r->m = mb - ma; r->neg = b.neg;
    }
    r->scale = s;
    if (r->m == 0) r->neg = 0;
    return r->m < LIMIT;
}

/* Exact sum; keeps the larger scale unless only a smaller one fits. */
static int dec_add(Dec a, Dec b, Dec *r) {
    return try_add(a, b, r) || try_add(strip(a, 0), strip(b, 0), r);
}

static int try_mul(Dec a, Dec b, Dec *r) {
    if (mul_ovf(a.m, b.m, &r->m)) return 0;
    r->scale = a.scale + b.scale;
    r->neg = (a.neg != b.neg) && r->m != 0;
    if (r->scale > MAX_SCALE) *r = strip(*r, MAX_SCALE);
    return r->m < LIMIT && r->scale <= MAX_SCALE;
}

/* Exact product with scale a.scale + b.scale when that fits. */
static int dec_mul(Dec a, Dec b, Dec *r) {
    return try_mul(a, b, r) || try_mul(strip(a, 0), strip(b, 0), r);
}

/* Whether to add one unit to the truncated magnitude q. rem: remainder is nonzero;
 * half: -1/0/1 as the remainder is below, at, above half the divisor. */
static int round_up(int mode, int neg, u128 q, int rem, int half) {
    if (!rem) return 0;
    switch (mode) {
    case R_DOWN: return 0;
    case R_UP: return 1;
    case R_FLOOR: return neg;
    case R_CEILING: return !neg;
    case R_HALF_UP: return half >= 0;
    default: /* R_HALF_EVEN */ return half > 0 || (half == 0 && (q & 1));
    }
}

/* *q = round(n * 10^e / d) for magnitudes n < 10^38 and 0 < d < 10^38, -38 <= e <= 76,
 * with the sign neg applied for the rounding direction. Fails when q reaches 10^38. */
static int div_round(u128 n, int e, u128 d, int neg, int mode, u128 *q) {
    u128 quo, rem, dv;
    if (e >= 0) {
        dv = d;
        quo = n / d;
        rem = n % d;
        for (int i = 0; i < e; i++) {
            u128 digit, r10;
            if (rem <= ~(u128)0 / 10) {
                r10 = rem * 10;
                digit = r10 / d;
                r10 %= d;
            } else {
                /* 10*rem would overflow: add rem ten times modulo d (rem, acc < d < 2^127). */
                digit = 0;
                r10 = 0;
                for (int j = 0; j < 10; j++) {
                    if (r10 >= d - rem) { r10 -= d - rem; digit++; }
                    else r10 += rem;
                }
            }
            if (quo > (LIMIT - 1 - digit) / 10) return 0;
            quo = quo * 10 + digit;
            rem = r10;
        }
    } else if (mul_ovf(d, p10[-e], &dv)) {
        /* The divisor exceeds 2^128 > 2n: the quotient is 0 and the rest below half. */
        quo = 0;
        rem = n;
        *q = round_up(mode, neg, 0, rem != 0, -1);
        return 1;
    } else {
        quo = n / dv;
        rem = n % dv;
    }
    int half = rem < dv - rem ? -1 : rem == dv - rem ? 0 : 1;
    quo += (u128)round_up(mode, neg, quo, rem != 0, half);
    *q = quo;
    return quo < LIMIT;
}

/* d at the given scale, rounding when it shrinks. */
static int dec_round(Dec a, int scale, int mode, Dec *r) {
    r->neg = a.neg;
    r->scale = scale;
    if (scale >= a.scale) {
        if (!scale_up(a.m, scale - a.scale, &r->m) || r->m >= LIMIT) return 0;
    } else if (!div_round(a.m, -(a.scale - scale), 1, a.neg, mode, &r->m)) {
        return 0;
    }
    if (r->m == 0) r->neg = 0;
    return 1;
}

/* a / b rounded to the given scale. b must be nonzero. */
static int dec_div(Dec a, Dec b, int scale, int mode, Dec *r) {
    r->neg = a.neg != b.neg;
    r->scale = scale;
    if (!div_round(a.m, scale + b.scale - a.scale, b.m, r->neg, mode, &r->m)) return 0;
    if (r->m == 0) r->neg = 0;
    return 1;
}

/* -1, 0, 1 for |a| against |b|, exactly (no overflow: a side that leaves u128 is larger). */
static int cmp_mag(Dec a, Dec b) {
    u128 ma = a.m, mb = b.m;
    if (a.scale < b.scale) { if (!scale_up(a.m, b.scale - a.scale, &ma)) return 1; }
    else if (b.scale < a.scale) { if (!scale_up(b.m, a.scale - b.scale, &mb)) return -1; }
    return ma < mb ? -1 : ma > mb;
}

static int dec_cmp(Dec a, Dec b) {
    if (a.neg != b.neg) return a.neg ? -1 : 1;
    int c = cmp_mag(a, b);
    return a.neg ? -c : c;
}

/* Writes the canonical text ("-12.50", "0.05") into buf (>= 48 bytes); returns length. */
static size_t dec_format(Dec d, char *buf) {
    char digits[48];
    int nd = 0;
    u128 m = d.m;
    do { digits[nd++] = (char)('0' + (int)(m % 10)); m /= 10; } while (m);
    while (nd <= d.scale) digits[nd++] = '0';          /* at least one digit before '.' */
    char *o = buf;
    if (d.neg) *o++ = '-';
    for (int i = nd - 1; i >= 0; i--) {
        *o++ = digits[i];
        if (i == d.scale && i > 0) *o++ = '.';
    }
    *o = '\0';
    return (size_t)(o - buf);
}

/* Parses [+-]digits[.digits][e[+-]digits] (".5" and "5." accepted). Returns NULL on
 * success, else a static description of the problem. */
static const char *dec_parse(const char *s, size_t n, Dec *out) {
    const char *p = s, *e = s + n;
    Dec d = {0, 0, 0};
    int ndigits = 0;
    if (p < e && (*p == '+' || *p == '-')) d.neg = (*p++ == '-');
    for (; p < e && (unsigned)(*p - '0') < 10; p++, ndigits++) {
        if (d.m > (LIMIT - 1 - (u128)(*p - '0')) / 10) return "more than 38 significant digits";
        d.m = d.m * 10 + (u128)(*p - '0');
    }
    if (p < e && *p == '.') {
        for (p++; p < e && (unsigned)(*p - '0') < 10; p++, ndigits++) {
            if (d.m > (LIMIT - 1 - (u128)(*p - '0')) / 10) return "more than 38 significant digits";
            d.m = d.m * 10 + (u128)(*p - '0');
            if (++d.scale > 2 * MAX_SCALE) return "more than 38 decimal places";
        }
    }
    if (ndigits == 0) return "not a decimal number";
    long exp = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        int eneg = 0, edigits = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) eneg = (*p++ == '-');
        for (; p < e && (unsigned)(*p - '0') < 10; p++, edigits++)
            if (exp < 100000) exp = exp * 10 + (*p - '0');
        if (edigits == 0) return "not a decimal number";
        if (eneg) exp = -exp;
    }
    if (p != e) return "not a decimal number";
    long scale = (long)d.scale - exp;
    if (scale < 0) {
        if (!scale_up(d.m, (int)(scale < -100 ? 100 : -scale), &d.m) || d.m >= LIMIT)
            return "more than 38 significant digits";
        scale = 0;
    }
    if (scale > MAX_SCALE) {
        /* Only trailing zeros may go: 1.50e-37 is 0.0...015, but 1e-39 does not fit. */
        Dec t = d;
        t.scale = scale > 1000 ? 1000 : (int)scale;
        t = strip(t, MAX_SCALE);
        if (t.scale > MAX_SCALE) return "more than 38 decimal places";
        d = t;
        scale = d.scale;
    }
    d.scale = (int)scale;
    if (d.m == 0) d.neg = 0;
    *out = d;
    return NULL;
}

/* --------------------------------------------------------------------------------------- */
/* Coercion and argument checks                                                             */
/* --------------------------------------------------------------------------------------- */

/* The one coercion for every operand: a Decimal, a decimal string, a Lua integer, or a
 * float whose binary value is exactly a decimal with at most 18 places. Raises an argument
 * error naming idx otherwise. */
static Dec todecimal(lua_State *L, int idx) {
    Dec d = {0, 0, 0};
    switch (lua_type(L, idx)) {
    case LUA_TUSERDATA: {
        DecBox *b = testdec(L, idx);
        if (!b) luaL_typeerror(L, idx, "decimal, string or integer");
        return unbox(b);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        const char *why = dec_parse(s, n, &d);
        if (why)
            luaL_argerror(L, idx, lua_pushfstring(L, "invalid decimal \"%s\": %s",
                                                  n > 40 ? "(long string)" : s, why));
        return d;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_Integer v = lua_tointeger(L, idx);
            d.neg = v < 0;
            d.m = v < 0 ? (u128)(0ULL - (unsigned long long)v) : (u128)v;
            return d;
        } else {
            double x = (double)lua_tonumber(L, idx), ax = fabs(x);
            if (!isfinite(x)) luaL_argerror(L, idx, "number is not finite");
            d.neg = x < 0;
            if (ax == floor(ax)) {
                if (ax >= ldexp(1.0, 127) || (d.m = (u128)ax) >= LIMIT)
                    luaL_argerror(L, idx, "decimal overflow: number has more than 38 digits");
                return d;
            }
            double y = ldexp(ax, 18);                 /* exact: a power-of-two scaling */
            if (y != floor(y)) {
                char shown[32], exact[40];
                snprintf(shown, sizeof shown, "%.14g", x);
                snprintf(exact, sizeof exact, "%.17g", x);
                luaL_argerror(L, idx, lua_pushfstring(L,
                    "number has no exact decimal value within 18 places (%s is stored as %s...); "
                    "pass a string such as \"%s\"", shown, exact, shown));
            }
            /* ax = y / 2^18 = y * 5^18 / 10^18, then drop the trailing zeros. */
            d.m = (u128)y * p5_18;
            d.scale = 18;
            return strip(d, 0);
        }
    default:
        luaL_typeerror(L, idx, "decimal, string or integer");
        return d;
    }
}

static int check_scale(lua_State *L, int idx) {
    lua_Integer s = luaL_checkinteger(L, idx);
    luaL_argcheck(L, s >= 0 && s <= MAX_SCALE, idx, "scale must be between 0 and 38");
    return (int)s;
}

static int check_mode(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TSTRING)
        return luaL_argerror(L, idx, lua_pushfstring(L,
            "rounding mode expected (" MODE_LIST "), got %s", luaL_typename(L, idx)));
    const char *name = lua_tostring(L, idx);
    for (int i = 0; mode_names[i]; i++)
        if (strcmp(name, mode_names[i]) == 0) return i;
    return luaL_argerror(L, idx, lua_pushfstring(L,
        "unknown rounding mode '%s' (expected " MODE_LIST ")", name));
}

static int overflow(lua_State *L, const char *op) {
    return luaL_error(L, "decimal overflow in %s: result exceeds 38 digits or 38 decimal places",
                      op);
}

/* --------------------------------------------------------------------------------------- */
/* Lua functions                                                                            */
/* --------------------------------------------------------------------------------------- */

/*** Makes a decimal; `polysim.decimal(x)` is the same call.
 * @function new
 * @tparam string|int|number|decimal x the value (a decimal is returned as it is)
 * @treturn decimal
 * @raise an argument error for text that is not a decimal, an inexact float, a non-finite
 *   number, more than 38 digits, or another type
 */
static int l_new(lua_State *L) {
    if (testdec(L, 1)) { lua_settop(L, 1); return 1; }
    pushdec(L, todecimal(L, 1));
    return 1;
}

/* decimal(x): __call on the module table, so argument 1 is the module itself. */
static int l_call(lua_State *L) {
    lua_remove(L, 1);
    return l_new(L);
}

/*** Parses decimal text without raising: for input from outside.
 * @function parse
 * @tparam string s `[+-]digits[.digits][e[+-]digits]`
 * @treturn decimal
 * @treturn[2] nil
 * @treturn[2] string `invalid decimal "<s>": <why>`
 * @raise when `s` is not a string
 */
static int l_parse(lua_State *L) {
    size_t n;
    Dec d;
    if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string");
    const char *s = lua_tolstring(L, 1, &n);
    const char *why = dec_parse(s, n, &d);
    if (why) {
        luaL_pushfail(L);
        lua_pushfstring(L, "invalid decimal \"%s\": %s", n > 40 ? "(long string)" : s, why);
        return 2;
    }
    pushdec(L, d);
    return 1;
}

/*** The canonical text (as `tostring(d)`).
 * @function tostring
 * @param d the value
 * @treturn string e.g. `"-12.50"`, `"0.05"`
 */
static int l_tostring(lua_State *L) {
    char buf[48];
    size_t n = dec_format(todecimal(L, 1), buf);
    lua_pushlstring(L, buf, n);
    return 1;
}

/*** Text with exactly `scale` decimal places, for display (`D"9994.54647":format(2)` is
 * `"9994.55"`).
 * @function format
 * @param d the value
 * @tparam int scale places, 0 to 38
 * @tparam[opt="half_even"] string rounding a rounding mode
 * @treturn string
 */
static int l_format(lua_State *L) {
    Dec a = todecimal(L, 1), r;
    int scale = check_scale(L, 2);
    int mode = lua_isnoneornil(L, 3) ? R_HALF_EVEN : check_mode(L, 3);
    if (!dec_round(a, scale, mode, &r)) return overflow(L, "format");
    char buf[48];
    size_t n = dec_format(r, buf);
    lua_pushlstring(L, buf, n);
    return 1;
}

/*** `a + b`, exact.
 * @function add
 * @param a
 * @param b
 * @treturn decimal
 */
static int l_add(lua_State *L) {
    Dec r;
    if (!dec_add(todecimal(L, 1), todecimal(L, 2), &r)) return overflow(L, "add");
    pushdec(L, r);
    return 1;
}

/*** `a - b`, exact.
 * @function sub
 * @param a
 * @param b
 * @treturn decimal
 */
static int l_sub(lua_State *L) {
    Dec r, b = todecimal(L, 2);
    if (b.m) b.neg = !b.neg;
    if (!dec_add(todecimal(L, 1), b, &r)) return overflow(L, "sub");
    pushdec(L, r);
    return 1;
}

/*** `a * b`, exact (the scales add up).
 * @function mul
 * @param a
 * @param b
 * @treturn decimal
 */
static int l_mul(lua_State *L) {
    Dec r;
    if (!dec_mul(todecimal(L, 1), todecimal(L, 2), &r)) return overflow(L, "mul");
    pushdec(L, r);
    return 1;
}

/*** `a / b`, rounded to `scale` places (the only division: `/` raises).
 * @function div
 * @param a
 * @param b
 * @tparam int scale places of the result, 0 to 38
 * @tparam string rounding a rounding mode (required)
 * @treturn decimal
 * @raise `"decimal division by zero"`; an argument error for a bad scale or mode
 */
static int l_div(lua_State *L) {
    Dec a = todecimal(L, 1), b = todecimal(L, 2), r;
    int scale = check_scale(L, 3);
    int mode = check_mode(L, 4);
    if (b.m == 0) return luaL_error(L, "decimal division by zero");
    if (!dec_div(a, b, scale, mode, &r)) return overflow(L, "div");
    pushdec(L, r);
    return 1;
}

/*** Rounds to exactly `scale` places (`D"2.675":round(2, "half_up")` is `2.68`).
 * @function round
 * @param d the value
 * @tparam int scale places, 0 to 38
 * @tparam string rounding a rounding mode (required)
 * @treturn decimal
 */
static int l_round(lua_State *L) {
    Dec a = todecimal(L, 1), r;
    int scale = check_scale(L, 2);
    int mode = check_mode(L, 3);
    if (!dec_round(a, scale, mode, &r)) return overflow(L, "round");
    pushdec(L, r);
    return 1;
}

/*** Rounds to the scale of `exp` (`D.quantize(x, "0.01", "half_even")`: cents).
 * @function quantize
 * @param d the value
 * @param exp a decimal whose number of places is used
 * @tparam string rounding a rounding mode (required)
 * @treturn decimal
 */
static int l_quantize(lua_State *L) {
    Dec a = todecimal(L, 1), q = todecimal(L, 2), r;
    int mode = check_mode(L, 3);
    if (!dec_round(a, q.scale, mode, &r)) return overflow(L, "quantize");
    pushdec(L, r);
    return 1;
}

/*** Compares two values (of any accepted type, unlike `==`).
 * @function cmp
 * @param a
 * @param b
 * @treturn int -1, 0 or 1
 */
static int l_cmp(lua_State *L) {
    lua_pushinteger(L, dec_cmp(todecimal(L, 1), todecimal(L, 2)));
    return 1;
}

/*** `-d`.
 * @function neg
 * @param d
 * @treturn decimal
 */
static int l_neg(lua_State *L) {
    Dec a = todecimal(L, 1);
    a.neg = !a.neg && a.m != 0;
    pushdec(L, a);
    return 1;
}

/*** `|d|`.
 * @function abs
 * @param d
 * @treturn decimal
 */
static int l_abs(lua_State *L) {
    Dec a = todecimal(L, 1);
    a.neg = 0;
    pushdec(L, a);
    return 1;
}

/*** The sign.
 * @function sign
 * @param d
 * @treturn int -1, 0 or 1
 */
static int l_sign(lua_State *L) {
    Dec a = todecimal(L, 1);
    lua_pushinteger(L, a.m == 0 ? 0 : a.neg ? -1 : 1);
    return 1;
}

/*** Whether the value is zero.
 * @function is_zero
 * @param d
 * @treturn bool
 */
static int l_is_zero(lua_State *L) {
    lua_pushboolean(L, todecimal(L, 1).m == 0);
    return 1;
}

/*** The number of decimal places the value carries (`D"1.50":scale()` is 2).
 * @function scale
 * @param d
 * @treturn int
 */
static int l_scale(lua_State *L) {
    lua_pushinteger(L, todecimal(L, 1).scale);
    return 1;
}

/*** The nearest float: lossy, for display and statistics only, never for money.
 * @function tonumber
 * @param d
 * @treturn number
 */
static int l_tonumber(lua_State *L) {
    char buf[48];
    dec_format(todecimal(L, 1), buf);
    if (lua_stringtonumber(L, buf) == 0) return luaL_error(L, "decimal: cannot convert %s", buf);
    lua_pushnumber(L, lua_tonumber(L, -1));
    return 1;
}

/*** Whether `v` is a decimal value (not text or a number).
 * @function isdecimal
 * @param v any value
 * @treturn bool
 */
static int l_isdecimal(lua_State *L) {
    lua_pushboolean(L, testdec(L, 1) != NULL);
    return 1;
}

/* Metamethods ------------------------------------------------------------------------------ */

static int m_eq(lua_State *L) {
    /* Lua calls __eq only for two userdata; another type of userdata is simply unequal. */
    if (!testdec(L, 1) || !testdec(L, 2)) { lua_pushboolean(L, 0); return 1; }
    lua_pushboolean(L, dec_cmp(todecimal(L, 1), todecimal(L, 2)) == 0);
    return 1;
}

static int m_lt(lua_State *L) {
    lua_pushboolean(L, dec_cmp(todecimal(L, 1), todecimal(L, 2)) < 0);
    return 1;
}

static int m_le(lua_State *L) {
    lua_pushboolean(L, dec_cmp(todecimal(L, 1), todecimal(L, 2)) <= 0);
    return 1;
}

static int m_div(lua_State *L) {
    return luaL_error(L, "decimal '/' needs a scale and a rounding mode: "
                         "use decimal.div(a, b, scale, rounding), e.g. a:div(b, 4, \"half_even\")");
}

static int m_concat(lua_State *L) {
    for (int i = 1; i <= 2; i++) {
        if (testdec(L, i)) {
            char buf[48];
            size_t n = dec_format(todecimal(L, i), buf);
            lua_pushlstring(L, buf, n);
        } else if (lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER) {
            luaL_tolstring(L, i, NULL);
        } else {
            return luaL_error(L, "attempt to concatenate a %s value with a decimal",
                              luaL_typename(L, i));
        }
    }                                                 /* a b sa sb */
    lua_concat(L, 2);                                 /* a b s */
    return 1;
}

void ps_decimal_open(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"new", l_new},           {"parse", l_parse},       {"tostring", l_tostring},
        {"format", l_format},     {"add", l_add},           {"sub", l_sub},
        {"mul", l_mul},           {"div", l_div},           {"round", l_round},
        {"quantize", l_quantize}, {"cmp", l_cmp},           {"neg", l_neg},
        {"abs", l_abs},           {"sign", l_sign},         {"is_zero", l_is_zero},
        {"scale", l_scale},       {"tonumber", l_tonumber}, {"isdecimal", l_isdecimal},
        {NULL, NULL},
    };
    static const luaL_Reg metas[] = {
        {"__add", l_add}, {"__sub", l_sub},   {"__mul", l_mul},       {"__unm", l_neg},
        {"__eq", m_eq},   {"__lt", m_lt},     {"__le", m_le},         {"__div", m_div},
        {"__idiv", m_div}, {"__tostring", l_tostring}, {"__concat", m_concat},
        {NULL, NULL},
    };
    /* Several hosts may open the module in threads at once: the tables are written once. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_powers);
    lua_createtable(L, 0, 24);                        /* core M */
    luaL_setfuncs(L, funcs, 0);
    lua_pushinteger(L, MAX_SCALE);
    lua_setfield(L, -2, "MAX_SCALE");
    lua_pushinteger(L, MAX_DIGITS);
    lua_setfield(L, -2, "MAX_DIGITS");
    lua_createtable(L, 0, 1);                         /* core M callmt */
    lua_pushcfunction(L, l_call);
    lua_setfield(L, -2, "__call");
    lua_setmetatable(L, -2);                          /* core M */
    /* The type's metatable; reused (and refreshed) if the module is loaded again. */
    luaL_newmetatable(L, DECIMAL_MT);                 /* core M mt  (sets __name) */
    luaL_setfuncs(L, metas, 0);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__index");                   /* core M mt */
    lua_pop(L, 1);                                    /* core M */
    lua_setfield(L, -2, "decimal");                   /* core */
}
