/* Error decoding: an HTTP answer or a transport failure becomes one error object of facts
 * (status, code, message, retry_after); lua/polysim/retry.lua decides what is retryable.
 * Precedence (BRIEF): the X-Polysim-Code header names the code; otherwise the body's
 * `error` when it is a code; FastAPI `detail` bodies, non-JSON bodies, empty bodies and
 * CDN edge blocks each get a code of their own. */
#include <ctype.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "errors.h"

#define ERROR_MT "polysim.Error"

static void seterr(lua_State *L, const char *k, const char *v) {
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void new_error(lua_State *L, lua_Integer status) {
    lua_createtable(L, 0, 10);                         /* err */
    luaL_setmetatable(L, ERROR_MT);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
}

static int is_code(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!(isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

void ps_error_push_transport(lua_State *L, CURLcode rc, int too_large, const char *detail,
                             size_t max_size) {
    const char *code;
    switch (rc) {
    case CURLE_COULDNT_CONNECT: code = "CONNECTION_REFUSED"; break;
    case CURLE_OPERATION_TIMEDOUT: code = "TIMEOUT"; break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: code = "DNS_FAILURE"; break;
    case CURLE_GOT_NOTHING: code = "EMPTY_REPLY"; break;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: code = "CONNECTION_RESET"; break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: code = "TLS_ERROR"; break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: code = "BAD_URL"; break;
    case CURLE_WRITE_ERROR: code = too_large ? "RESPONSE_TOO_LARGE" : "TRANSPORT_ERROR"; break;
    default: code = "TRANSPORT_ERROR"; break;
    }
    new_error(L, 0);                                   /* err */
    seterr(L, "code", code);
    if (too_large)
        lua_pushfstring(L, "response larger than max_size (%d bytes)", (int)max_size);
    else if (detail && *detail)
        lua_pushfstring(L, "%s: %s", curl_easy_strerror(rc), detail);
    else
        lua_pushstring(L, curl_easy_strerror(rc));
    lua_setfield(L, -2, "message");
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)rc);
    lua_setfield(L, -2, "curl_code");
    lua_setfield(L, -2, "details");                    /* err */
}

/* Retry-After: delta-seconds or an HTTP date; returns seconds (>= 0) or -1. */
static double parse_retry_after(const char *v) {
    if (!v) return -1;
    char *end;
    double s = strtod(v, &end);
    if (end != v && *end == '\0') {
        if (!isfinite(s)) return -1;                   /* inf, nan, 1e999: no wait at all */
        return s < 0 ? 0 : s;
    }
    time_t when = curl_getdate(v, NULL);
    if (when < 0) return -1;
    double d = difftime(when, time(NULL));
    return d < 0 ? 0 : d;
}

static const char *header(lua_State *L, int hdrs, const char *name) {
    if (lua_getfield(L, hdrs, name) != LUA_TSTRING) {
        lua_pop(L, 1);
        return NULL;
    }
    const char *v = lua_tostring(L, -1);               /* hdrs table keeps it alive */
    lua_pop(L, 1);
    return v;
}

/* Pushes "[; ]loc.path: msg" for item i of the validation list at `list`, or nothing
 * (returns 0) when that item is not a table. The item, its loc and its msg sit on the stack
 * below this function's own luaL_Buffer, so the buffer is only ever used with the stack at
 * its own level (issue 8.1: values pushed between buffer calls corrupted the box). */
static int push_validation_item(lua_State *L, int list, lua_Integer i, int sep) {
    int top = lua_gettop(L);
    if (lua_rawgeti(L, list, i) != LUA_TTABLE) {       /* item */
        lua_settop(L, top);
        return 0;
    }
    int has_loc = lua_getfield(L, top + 1, "loc") == LUA_TTABLE; /* item loc */
    int has_msg = lua_getfield(L, top + 1, "msg") == LUA_TSTRING; /* item loc msg */
    luaL_Buffer b;
    luaL_buffinit(L, &b);                              /* item loc msg box */
    if (sep) luaL_addstring(&b, "; ");
    if (has_loc) {
        lua_Integer m = (lua_Integer)lua_rawlen(L, top + 2);
        int parts = 0;
        for (lua_Integer j = 1; j <= m; j++) {
            int t = lua_rawgeti(L, top + 2, j);        /* item loc msg box v */
            if (t == LUA_TSTRING || t == LUA_TNUMBER) {
                if (parts++) {
                    lua_pop(L, 1);                     /* the '.' goes in first */
                    luaL_addchar(&b, '.');
                    lua_rawgeti(L, top + 2, j);        /* item loc msg box v */
                }
                luaL_addvalue(&b);                     /* item loc msg box */
            } else {
                lua_pop(L, 1);                         /* item loc msg box */
            }
        }
        luaL_addstring(&b, ": ");
    }
    if (has_msg) {
        lua_pushvalue(L, top + 3);                     /* item loc msg box msg */
        luaL_addvalue(&b);                             /* item loc msg box */
    }
    luaL_pushresult(&b);                               /* item loc msg text */
    lua_replace(L, top + 1);                           /* text loc msg */
    lua_settop(L, top + 1);                            /* text */
    return 1;
}

/* Pushes "loc.path: msg; ..." built from the FastAPI validation list at the top of the
 * stack (at most five items, then "; ..."). */
static void push_validation_message(lua_State *L) {
    int list = lua_gettop(L);                          /* list */
    luaL_Buffer b;
    luaL_buffinit(L, &b);                              /* list box */
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    int added = 0;
    for (lua_Integer i = 1; i <= n && i <= 5; i++)
        if (push_validation_item(L, list, i, added)) { /* list box text */
            luaL_addvalue(&b);                         /* list box */
            added = 1;
        }
    if (n > 5) luaL_addstring(&b, "; ...");
    luaL_pushresult(&b);                               /* list msg */
}

static int has_field(lua_State *L, int t, const char *k) {
    int r = lua_getfield(L, t, k) != LUA_TNIL;
    lua_pop(L, 1);
    return r;
}

/* Sets err.code unless an earlier source (the header, then the body) already did. */
static void set_code(lua_State *L, int err, const char *code) {
    if (has_field(L, err, "code")) return;
    lua_pushstring(L, code);
    lua_setfield(L, err, "code");
}

static void decode_json_body(lua_State *L, int err, lua_Integer status) {
    int json = lua_gettop(L);                          /* err ... json */
    if (!lua_istable(L, json)) return;
    if (lua_getfield(L, json, "error") == LUA_TSTRING) { /* json e */
        if (is_code(lua_tostring(L, -1))) {
            if (!has_field(L, err, "code")) lua_setfield(L, err, "code");
            else lua_pop(L, 1);
        } else {
            lua_setfield(L, err, "message");           /* a human sentence, not a code */
        }
    } else {
        lua_pop(L, 1);
    }
    if (lua_getfield(L, json, "message") == LUA_TSTRING) lua_setfield(L, err, "message");
    else lua_pop(L, 1);
    int t = lua_getfield(L, json, "detail");           /* json detail */
    if (t == LUA_TSTRING) {
        if (!has_field(L, err, "message")) lua_setfield(L, err, "message");
        else lua_pop(L, 1);
    } else if (t == LUA_TTABLE) {
        if (status == 422) set_code(L, err, "VALIDATION_ERROR");
        if (!has_field(L, err, "message")) {
            push_validation_message(L);                /* json detail msg */
            lua_setfield(L, err, "message");
        }
        lua_setfield(L, err, "details");               /* json */
    } else {
        lua_pop(L, 1);
    }
    if (lua_getfield(L, json, "details") == LUA_TTABLE) lua_setfield(L, err, "details");
    else lua_pop(L, 1);
    if (lua_getfield(L, json, "request_id") == LUA_TSTRING) lua_setfield(L, err, "request_id");
    else lua_pop(L, 1);
}

static void decode_text_body(lua_State *L, int err, lua_Integer status, const char *body,
                             size_t blen) {
    /* A CDN edge answers "error code: 1XXX" (a blocked User-Agent, mostly). */
    const char *m = blen < 8192 ? strstr(body, "error code: 1") : NULL;
    if (m && isdigit((unsigned char)m[13]) && isdigit((unsigned char)m[14]) &&
        isdigit((unsigned char)m[15])) {
        set_code(L, err, "EDGE_BLOCKED");
        lua_pushlstring(L, m + 12, 4);                 /* err ... edge */
        lua_pushfstring(L, "blocked at the CDN edge (error code: %s), not an API error; "
                           "check the User-Agent and the network path", lua_tostring(L, -1));
        lua_setfield(L, err, "message");
        lua_createtable(L, 0, 1);                      /* err ... edge details */
        lua_pushinteger(L, strtol(m + 12, NULL, 10));
        lua_setfield(L, -2, "edge_code");
        lua_setfield(L, err, "details");
        lua_pop(L, 1);
        return;
    }
    if (status < 400) set_code(L, err, "DECODE_ERROR");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "HTTP %d with a non-JSON body: ", (int)status);
    luaL_addvalue(&b);
    size_t n = blen > 200 ? 200 : blen;
    for (size_t k = 0; k < n; k++) luaL_addchar(&b, isprint((unsigned char)body[k]) ? body[k] : ' ');
    if (blen > n) luaL_addstring(&b, "...");
    luaL_pushresult(&b);
    lua_setfield(L, err, "message");
}

/* core.decode_error(status, headers, body [, method, path]) -> err */
static int l_decode_error(lua_State *L) {
    lua_Integer status = luaL_checkinteger(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t blen;
    const char *body = luaL_optlstring(L, 3, "", &blen);
    const char *method = luaL_optstring(L, 4, NULL);
    const char *path = luaL_optstring(L, 5, NULL);
    const char *hcode = header(L, 2, "x-polysim-code");
    const char *rid = header(L, 2, "x-request-id");
    double ra = parse_retry_after(header(L, 2, "retry-after"));
    char ebuf[128];

    new_error(L, status);                              /* err */
    int err = lua_gettop(L);
    seterr(L, "method", method);
    seterr(L, "path", path);
    if (is_code(hcode)) seterr(L, "code", hcode);      /* the header wins */
    size_t i = 0;
    while (i < blen && isspace((unsigned char)body[i])) i++;
    if (i == blen) {
        lua_pushfstring(L, "HTTP %d with an empty body", (int)status);
        lua_setfield(L, err, "message");
    } else if (ps_json_push(L, body, blen, ebuf, sizeof ebuf)) { /* err json */
        decode_json_body(L, err, status);
    } else {
        decode_text_body(L, err, status, body, blen);
    }
    lua_settop(L, err);                                /* err */
    if (!has_field(L, err, "code")) {
        lua_pushfstring(L, "HTTP_%d", (int)status);
        lua_setfield(L, err, "code");
    }
    if (!has_field(L, err, "message")) {
        lua_pushfstring(L, "HTTP %d", (int)status);
        lua_setfield(L, err, "message");
    }
    if (rid) seterr(L, "request_id", rid);             /* the header beats the body */
    if (ra >= 0) {
        lua_pushnumber(L, ra);
        lua_setfield(L, err, "retry_after");
    }
    return 1;                  /* whether to retry is decided in Lua (polysim.retry) */
}

/* core.decode_ratelimit(headers) -> { limit, remaining, reset, tier } | nil */
static int l_decode_ratelimit(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const names[][2] = {
        {"x-ratelimit-limit", "limit"},
        {"x-ratelimit-remaining", "remaining"},
        {"x-ratelimit-reset", "reset"},
    };
    int found = 0;
    /* perf (issue 13): most answers carry none of them: no table then. */
    for (size_t k = 0; k < 3 && !found; k++) found = header(L, 1, names[k][0]) != NULL;
    if (!found && !header(L, 1, "x-ratelimit-tier")) return 0;
    found = 0;
    lua_createtable(L, 0, 4);                          /* rl */
    for (size_t k = 0; k < 3; k++) {
        const char *v = header(L, 1, names[k][0]);
        if (!v) continue;
        char *end;
        double d = strtod(v, &end);
        if (end == v) continue;
        lua_Integer i;                                 /* 1e300 is no integer: no UB cast */
        if (d == floor(d) && lua_numbertointeger(d, &i)) lua_pushinteger(L, i);
        else lua_pushnumber(L, d);
        lua_setfield(L, -2, names[k][1]);
        found = 1;
    }
    const char *tier = header(L, 1, "x-ratelimit-tier");
    if (tier) {
        seterr(L, "tier", tier);
        found = 1;
    }
    if (!found) return 0;
    return 1;
}

static int l_error_tostring(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "status");
    lua_getfield(L, 1, "code");
    lua_getfield(L, 1, "message");
    lua_getfield(L, 1, "method");
    lua_getfield(L, 1, "path");
    lua_getfield(L, 1, "request_id");                  /* err st code msg m p rid */
    lua_getfield(L, 1, "kind");                        /* ... kind */
    /* the kind goes in a local string before the buffer starts: nothing left between calls */
    const char *kind = lua_type(L, 8) == LUA_TSTRING ? lua_tostring(L, 8) : NULL;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer st = lua_tointeger(L, 2);
    if (kind) {                                        /* "configuration": nothing was sent */
        luaL_addstring(&b, "polysim: ");
        luaL_addstring(&b, kind);
        luaL_addstring(&b, " error ");
    } else if (st == 0) luaL_addstring(&b, "polysim: transport error ");
    else {
        lua_pushfstring(L, "polysim: HTTP %d ", (int)st);
        luaL_addvalue(&b);
    }
    luaL_addstring(&b, luaL_optstring(L, 3, "ERROR"));
    if (lua_isstring(L, 4)) {
        luaL_addstring(&b, ": ");
        luaL_addstring(&b, lua_tostring(L, 4));
    }
    if (lua_isstring(L, 5)) {
        lua_pushfstring(L, " (%s %s", lua_tostring(L, 5), luaL_optstring(L, 6, "?"));
        luaL_addvalue(&b);
        if (lua_isstring(L, 7)) {
            lua_pushfstring(L, ", request_id %s", lua_tostring(L, 7));
            luaL_addvalue(&b);
        }
        luaL_addchar(&b, ')');
    }
    luaL_pushresult(&b);
    return 1;
}

/* core.error{...}: an error object made in Lua (argument or decode failures). */
static int l_new_error(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_setmetatable(L, ERROR_MT);
    return 1;
}

void ps_errors_open(lua_State *L) {
    luaL_newmetatable(L, ERROR_MT);                    /* core mt */
    lua_pushcfunction(L, l_error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setfield(L, -2, "error_mt");                   /* core */
    lua_pushcfunction(L, l_decode_error);
    lua_setfield(L, -2, "decode_error");
    lua_pushcfunction(L, l_decode_ratelimit);
    lua_setfield(L, -2, "decode_ratelimit");
    lua_pushcfunction(L, l_new_error);
    lua_setfield(L, -2, "error");
}
