/* URLs as curl reads them: core.url_parse splits a URL with curl's own URL API
 * (curl_url), so that a decision taken on its parts (is this host loopback? is there a
 * user name?) is taken on what curl will connect to; core.url_escape percent-encodes a
 * string with curl_easy_escape (everything but ALPHA DIGIT - . _ ~). */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "url.h"

/* Sets t[key] = the URL part, when it is present; the string is freed here. */
static void set_part(lua_State *L, CURLU *u, CURLUPart part, unsigned flags, const char *key) {
    char *v = NULL;
    if (curl_url_get(u, part, &v, flags) != CURLUE_OK || !v) return;
    lua_pushstring(L, v);                              /* t v */
    curl_free(v);
    lua_setfield(L, -2, key);                          /* t */
}

/* core.url_parse(url) -> { url, scheme, host, port (integer), path, query, fragment,
 *                          user, password, zoneid } | nil, message */
static int l_url_parse(lua_State *L) {
    const char *s = luaL_checkstring(L, 1);
    CURLU *u = curl_url();
    if (!u) return luaL_error(L, "url_parse: out of memory");
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, s, 0);
    if (rc != CURLUE_OK) {
        curl_url_cleanup(u);
        lua_pushnil(L);                                /* nil */
        lua_pushstring(L, curl_url_strerror(rc));      /* nil msg */
        return 2;
    }
    lua_createtable(L, 0, 10);                         /* t */
    set_part(L, u, CURLUPART_URL, 0, "url");
    set_part(L, u, CURLUPART_SCHEME, 0, "scheme");
    set_part(L, u, CURLUPART_HOST, 0, "host");
    set_part(L, u, CURLUPART_PATH, 0, "path");
    set_part(L, u, CURLUPART_QUERY, 0, "query");
    set_part(L, u, CURLUPART_FRAGMENT, 0, "fragment");
    set_part(L, u, CURLUPART_USER, 0, "user");
    set_part(L, u, CURLUPART_PASSWORD, 0, "password");
    set_part(L, u, CURLUPART_OPTIONS, 0, "options");
    set_part(L, u, CURLUPART_ZONEID, 0, "zoneid");
    char *port = NULL;
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK && port) {
        lua_pushinteger(L, (lua_Integer)strtol(port, NULL, 10)); /* t port */
        curl_free(port);
        lua_setfield(L, -2, "port");                   /* t */
    }
    curl_url_cleanup(u);
    return 1;
}

/* core.url_escape(s) -> the percent-encoded string */
/* RFC 3986 unreserved bytes: ALPHA DIGIT - . _ ~ (what curl_easy_escape leaves alone). */
#define R10 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
#define R26 R10, R10, 1, 1, 1, 1, 1, 1
static const unsigned char unreserved[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
    ['0'] = R10, ['A'] = R26, ['a'] = R26,
};
#undef R10
#undef R26

static int l_url_escape(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n > (size_t)0x7fffffff) return luaL_error(L, "url_escape: string too long");
    /* perf (issue 13): ids (0x… condition ids, UUIDs) are all unreserved; curl_easy_escape
     * appends them byte by byte into a dynbuf (7.5k instructions a call in the profile). The
     * check is one table look-up a byte (the chain of range tests was 1.2k for a 66-byte id). */
    size_t i = 0;
    while (i < n && unreserved[(unsigned char)s[i]]) i++;
    if (i == n) {
        lua_pushvalue(L, 1);                           /* already a string (checklstring) */
        return 1;
    }
    char *e = curl_easy_escape(NULL, s, (int)n);
    if (!e) return luaL_error(L, "url_escape: out of memory");
    lua_pushstring(L, e);                              /* e */
    curl_free(e);
    return 1;
}

void ps_url_open(lua_State *L) {
    lua_pushcfunction(L, l_url_parse);                 /* core fn */
    lua_setfield(L, -2, "url_parse");                  /* core */
    lua_pushcfunction(L, l_url_escape);
    lua_setfield(L, -2, "url_escape");
}
