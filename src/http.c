/* HTTP transfers on the loop's curl multi handle. A transfer collects the response in C
 * buffers it owns (no Lua is called from curl callbacks) and, when curl reports it done,
 * the loop calls the transfer's on_done function with it. Connections stay in the multi's
 * cache, so calls to one host reuse them. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loop.h"
#include "errors.h"
#include "header.h"
#include "ws.h"

#define TRANSFER_MT "polysim.Transfer"
#define DEFAULT_MAX_SIZE (16L * 1024 * 1024)
#define SIG_MAX 320

enum { T_IDLE, T_RUNNING, T_DONE };

struct ps_handle;

typedef struct {
    ps_curl_owner owner;     /* first: CURLINFO_PRIVATE points here; owner.done = transfer_done */
    CURL *easy;
    struct ps_handle *h;     /* easy's record (easy_get) while the transfer holds it */
    ps_loop *loop;
    struct curl_slist *headers;
    struct curl_slist *kept;  /* the last request's lines on this handle, to reuse or free */
    ps_ws_buf body, hdrs;     /* the core's one byte buffer (ws.h) */
    size_t max_size;
    int state;
    int too_large;
    int pin;                 /* registry ref while running */
    int plain;               /* a plain GET or POST: h->sig holds its invariant options */
    int decode;              /* opts.decode: result() decodes a 2xx JSON body (l_result) */
    int lean;                /* opts.lean: a 2xx result has only the client's headers */
    CURLcode result;
    char method[16];
    char errbuf[CURL_ERROR_SIZE];
} ps_transfer;

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud) {
    ps_transfer *t = ud;
    size_t n = size * nmemb;
    if (t->body.len + n > t->max_size) {
        t->too_large = 1;
        return 0;                                      /* curl aborts with CURLE_WRITE_ERROR */
    }
    return ps_ws_buf_append(&t->body, data, n) == 0 ? n : 0;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud) {
    ps_transfer *t = ud;
    size_t n = size * nmemb;
    /* A new status line starts a new response (100-continue, redirects): keep the last. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) t->hdrs.len = 0;
    if (t->hdrs.len + n > 256 * 1024) return 0;
    return ps_ws_buf_append(&t->hdrs, data, n) == 0 ? n : 0;
}

/* perf (issue 13): the methods hold the metatable as upvalue 1 (ps_http_open), so the check
 * is a pointer comparison, not luaL_checkudata's registry look-up by name (~2k instructions
 * a call over done, result and close). Without the upvalue (__gc, __close, __tostring) or
 * for anything else, luaL_checkudata decides and words the error. */
static ps_transfer *check_transfer(lua_State *L, int idx) {
    void *p = lua_touserdata(L, idx);
    if (p && lua_getmetatable(L, idx)) {               /* mt */
        int same = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
        if (same) return p;
    }
    return luaL_checkudata(L, idx, TRANSFER_MT);
}

/* perf (issue 13): finished easy handles are kept for the next request instead of
 * curl_easy_cleanup + curl_easy_init per call (the profile's largest per-call allocation).
 * A handle that ran a plain GET (no body, not fresh) or POST (a body, not fresh) keeps its
 * options with their signature (kind, connect timeout, HTTP version, user agent, cainfo):
 * the next plain request of that kind with the same signature sets only what differs per
 * request (URL, headers, timeout, the body, our pointers). The
 * profile showed curl re-parsing the protocols string, accept-encoding and the user agent on
 * every request. Any other handle, or a signature that differs, is curl_easy_reset and set up
 * in full as before. Connections live in the multi's cache either way. */
#define EASY_POOL 64
/* A handle's record, made once with it: what it keeps between requests. perf (issue 13):
 * with it, not in the transfer, a transfer's userdata (made and collected per call) is 330
 * bytes smaller, and the byte buffers keep their memory instead of a malloc, reallocs and a
 * free each per call (callgrind: the collector's marking and sweeping and malloc/free were
 * a third of the client's own instructions a call). */
typedef struct ps_handle {
    CURL *e;
    struct curl_slist *headers;   /* the header lines it last sent (see request_headers) */
    ps_ws_buf body, hdrs;         /* emptied buffers of its last transfer */
    int plain;                    /* it holds the options of a plain request, sig */
    size_t siglen;
    char sig[SIG_MAX];
} ps_handle;
#define BUF_KEEP (16u * 1024)     /* a larger buffer is freed, not kept */
static _Thread_local ps_handle *easy_pool[EASY_POOL];
static _Thread_local int easy_pooled;

/* Gives t a handle, with the buffers and header lines its record kept (t->kept); 0 when out
 * of memory. *configured = 1 when it already holds the invariant options sig of a plain
 * request (t->plain), whose signature the record now holds either way. */
static int easy_get(ps_transfer *t, const char *sig, size_t siglen, int *configured) {
    *configured = 0;
    ps_handle *h;
    if (easy_pooled) {
        h = easy_pool[--easy_pooled];
        if (t->plain && h->plain && h->siglen == siglen && memcmp(h->sig, sig, siglen) == 0)
            *configured = 1;
        else if (h->plain)
            curl_easy_reset(h->e);
    } else {
        h = calloc(1, sizeof *h);
        if (!h) return 0;
        h->e = curl_easy_init();
        if (!h->e) {
            free(h);
            return 0;
        }
        ps_ws_buf_init(&h->body, NULL, NULL);
        ps_ws_buf_init(&h->hdrs, NULL, NULL);
    }
    h->plain = 0;
    if (t->plain && !*configured) {
        memcpy(h->sig, sig, siglen);
        h->siglen = siglen;
    }
    t->h = h;
    t->easy = h->e;
    t->kept = h->headers;
    h->headers = NULL;
    t->body = h->body;                 /* moved: the record's copies are emptied */
    t->hdrs = h->hdrs;
    ps_ws_buf_init(&h->body, NULL, NULL);
    ps_ws_buf_init(&h->hdrs, NULL, NULL);
    return 1;
}

static void keep_buf(ps_ws_buf *to, ps_ws_buf *from) {
    if (from->cap <= BUF_KEEP) {
        *to = *from;
        to->len = 0;
        ps_ws_buf_init(from, NULL, NULL);
    }
}

static void easy_put(ps_transfer *t) {
    ps_handle *h = t->h;
    CURL *e = h->e;
    t->h = NULL;
    t->easy = NULL;
    if (easy_pooled < EASY_POOL) {
        easy_pool[easy_pooled++] = h;
        h->headers = t->headers;              /* no longer curl's: HTTPHEADER goes below */
        t->headers = NULL;
        keep_buf(&h->body, &t->body);
        keep_buf(&h->hdrs, &t->hdrs);
        h->plain = t->plain && t->state == T_DONE;
        if (h->plain) {
            /* Pointers into this transfer go; the next request sets its own. */
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, (char *)NULL);
            curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)NULL);
            curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)NULL);
            curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)NULL);
        } else {
            curl_easy_reset(e);
        }
    } else {
        curl_easy_cleanup(e);
        ps_ws_buf_free(&h->body);
        ps_ws_buf_free(&h->hdrs);
        curl_slist_free_all(h->headers);
        free(h);
    }
}

/* The invariant options of a plain GET or POST (kind 'G' or 'P') as one byte string in
 * sig (SIG_MAX bytes); 0 when they do not fit. */
static int make_sig(char *sig, size_t *siglen, char kind, long ctimeout_ms, int httpv,
                    const char *ua, size_t ualen, const char *cainfo) {
    size_t clen = cainfo ? strlen(cainfo) : 0;
    size_t need = 1 + sizeof ctimeout_ms + sizeof httpv + 2 * sizeof(size_t) + 2 + ualen + clen;
    if (need > SIG_MAX) return 0;
    char *s = sig;
    *s++ = kind;
    memcpy(s, &ctimeout_ms, sizeof ctimeout_ms), s += sizeof ctimeout_ms;
    memcpy(s, &httpv, sizeof httpv), s += sizeof httpv;
    *s++ = ua ? 1 : 0;
    memcpy(s, &ualen, sizeof ualen), s += sizeof ualen;
    if (ualen) memcpy(s, ua, ualen), s += ualen;
    *s++ = cainfo ? 1 : 0;
    memcpy(s, &clen, sizeof clen), s += sizeof clen;
    if (clen) memcpy(s, cainfo, clen), s += clen;
    *siglen = (size_t)(s - sig);
    return 1;
}

static void transfer_release(ps_transfer *t) {
    if (t->easy) {
        if (t->state == T_RUNNING && t->loop) curl_multi_remove_handle(ps_loop_multi(t->loop), t->easy);
        easy_put(t);
    }
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    curl_slist_free_all(t->kept);
    t->kept = NULL;
    ps_ws_buf_free(&t->body);
    ps_ws_buf_free(&t->hdrs);
}

/* The loop's done() for a transfer: the handle leaves the multi, on_done runs. */
static void transfer_done(ps_curl_owner *owner, ps_loop *loop, CURL *easy, CURLcode result) {
    ps_transfer *t = (ps_transfer *)(void *)owner;
    curl_multi_remove_handle(ps_loop_multi(loop), easy);
    t->state = T_DONE;
    t->result = result;
    lua_State *L = ps_loop_state(loop);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->pin);         /* transfer */
    luaL_unref(L, LUA_REGISTRYINDEX, t->pin);
    t->pin = LUA_NOREF;
    lua_getiuservalue(L, -1, 2);                       /* transfer on_error */
    lua_getiuservalue(L, -2, 1);                       /* transfer on_error on_done */
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 3);
        return;
    }
    lua_pushvalue(L, -3);                              /* transfer on_error on_done transfer */
    lua_getiuservalue(L, -4, 3);                       /* transfer on_error on_done transfer data */
    ps_loop_call(loop, L, 2, 0, -4);                   /* transfer on_error */
    lua_pop(L, 2);
}

/* Adds "Name: value" to the request headers; value NULL removes a header curl would add.
 * A name that is not a token or a value with CR, LF or another control character raises
 * (header.c's rule, shared with the WebSocket handshake). Values are never logged. */
static void add_header(lua_State *L, ps_transfer *t, const char *name, size_t nlen,
                       const char *value, size_t vlen) {
    if (!ps_header_name_ok(name, nlen)) luaL_error(L, "request: bad header name '%s'", name);
    if (value && !ps_header_value_ok(value, vlen))
        luaL_error(L, "request: header '%s' has a control character (CR/LF not allowed)", name);
    /* curl's list syntax: "X:" removes X, "X;" sends X empty, "X: v" sends v. */
    const char *sep = !value ? ":" : value[0] ? ": " : ";";
    size_t slen = strlen(sep);
    /* perf (issue 13): the line is built on the C stack when it fits (a Lua string per
     * header showed in the profile); curl_slist_append copies it either way. The checks
     * above refuse NUL, so nlen/vlen are the C strings' lengths. */
    char local[512];
    char *line = local;
    size_t nl = nlen, vl = value ? vlen : 0;
    if (nl + slen + vl + 1 > sizeof local) line = lua_newuserdatauv(L, nl + slen + vl + 1, 0);
    memcpy(line, name, nl);
    memcpy(line + nl, sep, slen);
    if (vl) memcpy(line + nl + slen, value, vl);
    line[nl + slen + vl] = '\0';
    struct curl_slist *l = curl_slist_append(t->headers, line);
    if (line != local) lua_pop(L, 1);
    if (!l) luaL_error(L, "request: out of memory");
    t->headers = l;
}

/* perf (issue 13): curl prints its own Accept-Encoding line with aprintf, a byte at a time
 * through a callback, on every request (callgrind, the plain easy loop: +7.4k instructions
 * a call with CURLOPT_ACCEPT_ENCODING); a line of ours in the header list makes it skip
 * that (Curl_checkheaders) for the same bytes on the wire, and CURLOPT_ACCEPT_ENCODING stays
 * set, so curl still decodes what comes back. The list is what curl sends for "": every
 * encoding this libcurl decodes, in its order. (The User-Agent cannot go the same way:
 * Curl_pretransfer prints CURLOPT_USERAGENT for a proxy's CONNECT whether or not a header
 * overrides it, and without the option a CONNECT would go without one.) */
static char accept_encoding[64];
static size_t accept_encoding_len;

static void init_accept_encoding(void) {
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    const char *parts[4];
    int n = 0;
    if (v->features & CURL_VERSION_LIBZ) parts[n++] = "deflate", parts[n++] = "gzip";
    if (v->features & CURL_VERSION_BROTLI) parts[n++] = "br";
    if (v->features & CURL_VERSION_ZSTD) parts[n++] = "zstd";
    char *o = accept_encoding;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(parts[i]);
        if (i) memcpy(o, ", ", 2), o += 2;
        memcpy(o, parts[i], k), o += k;
    }
    *o = '\0';
    accept_encoding_len = (size_t)(o - accept_encoding);
}

/* perf (issue 13): l_request's option names are its upvalues, interned once (ps_http_open),
 * so a read is lua_gettable with the key at hand: lua_getfield found each name again
 * through the string cache, ~16 a request (callgrind: ~2.2k instructions of l_request's
 * 9k). lua_gettable, as lua_getfield, honours a metatable on opts. */
enum {
    K_URL = 1, K_METHOD, K_BODY, K_USER_AGENT, K_HTTP_VERSION, K_CAINFO, K_TIMEOUT,
    K_CONNECT_TIMEOUT, K_MAX_SIZE, K_FRESH, K_DECODE, K_LEAN, K_ON_DONE, K_ON_ERROR, K_DATA,
    K_HEADERS, K_COUNT
};
static const char *const opt_keys[K_COUNT] = {
    NULL, "url", "method", "body", "user_agent", "http_version", "cainfo", "timeout",
    "connect_timeout", "max_size", "fresh", "decode", "lean", "on_done", "on_error", "data",
    "headers",
};

static int opt_get(lua_State *L, int key) {            /* pushes opts[key] */
    lua_pushvalue(L, lua_upvalueindex(key));
    return lua_gettable(L, 1);
}

/* Compares lines with a kept list instead of adding them (request_headers). */
typedef struct {
    const struct curl_slist *next;   /* the kept line the next one must equal */
    int match;                       /* all so far did */
} hlines;

/* Whether the kept line l is what add_header would build. A line that add_header built was
 * checked then; names are tokens (no ':' or ';'), so equal lines mean equal name and value. */
static int line_is(const char *l, const char *name, size_t nlen, const char *value, size_t vlen) {
    size_t n = strlen(l);                  /* lengths first: a name or value may hold a NUL */
    if (!value) return n == nlen + 1 && memcmp(l, name, nlen) == 0 && l[nlen] == ':';
    if (!vlen) return n == nlen + 1 && memcmp(l, name, nlen) == 0 && l[nlen] == ';';
    return n == nlen + 2 + vlen && memcmp(l, name, nlen) == 0 && l[nlen] == ':' &&
           l[nlen + 1] == ' ' && memcmp(l + nlen + 2, value, vlen) == 0;
}

static void header_line(lua_State *L, ps_transfer *t, hlines *cmp, const char *name,
                        size_t nlen, const char *value, size_t vlen) {
    if (!cmp) {
        add_header(L, t, name, nlen, value, vlen);
    } else if (cmp->match) {
        cmp->match = cmp->next && line_is(cmp->next->data, name, nlen, value, vlen);
        if (cmp->match) cmp->next = cmp->next->next;
    }
}

/* The request's header lines: the caller's (opts.headers at stack index 1) and ours; added
 * to t->headers, or with cmp only compared with a kept list. */
static void request_headers(lua_State *L, ps_transfer *t, hlines *cmp, int bodiless) {
    int has_ctype = 0, has_ae = 0;
    opt_get(L, K_HEADERS);                             /* ... headers */
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, -2)) {                      /* ... headers k v */
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                size_t nl, vl;
                const char *n = lua_tolstring(L, -2, &nl), *v = lua_tolstring(L, -1, &vl);
                header_line(L, t, cmp, n, nl, v, vl);
                if (nl == 12 && strncasecmp(n, "content-type", 12) == 0) has_ctype = 1;
                else if (nl == 15 && strncasecmp(n, "accept-encoding", 15) == 0) has_ae = 1;
            } else
                luaL_error(L, "request: headers must map strings to strings");
            lua_pop(L, 1);                             /* ... headers k */
        }
    }
    lua_pop(L, 1);                                     /* ... */
    /* As curl would: an Accept-Encoding of the caller's wins. */
    if (accept_encoding_len && !has_ae)
        header_line(L, t, cmp, "Accept-Encoding", 15, accept_encoding, accept_encoding_len);
    /* curl adds "Expect: 100-continue" to large POSTs: one more round trip for nothing. */
    header_line(L, t, cmp, "Expect", 6, NULL, 0);
    /* A bodiless POST/DELETE still goes through curl's POSTFIELDS path below, which would
     * label the empty body "application/x-www-form-urlencoded" (issue 8 bug 7). */
    if (bodiless && !has_ctype) header_line(L, t, cmp, "Content-Type", 12, NULL, 0);
}

static double opt_number(lua_State *L, int key, double dflt) {
    opt_get(L, key);
    double v = luaL_opt(L, luaL_checknumber, -1, dflt);
    lua_pop(L, 1);
    return v;
}

static const char *opt_string(lua_State *L, int key, size_t *len) {
    opt_get(L, key);
    const char *v = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, len);
    lua_pop(L, 1);                                     /* string stays alive: opts holds it */
    return v;
}

/* core.request{ method=, url=, headers={}, body=, timeout=, connect_timeout=, max_size=,
 *               user_agent=, http_version="1.1"|"2", cainfo=, fresh=bool, decode=bool,
 *               lean=bool, on_done=fn, on_error=fn, data=any }
 *   -> transfer. on_done(transfer, data) runs when it ends; an error it raises goes to
 *   on_error(err), else to loop:on_error. perf (issue 13): data lets one shared on_done find
 *   its caller without a table keyed by transfers (polysim.loop's request). */
static int l_request(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    ps_loop *loop = ps_loop_get(L);
    size_t blen = 0;
    const char *url = opt_string(L, K_URL, NULL);
    luaL_argcheck(L, url != NULL, 1, "url is required");
    const char *method = opt_string(L, K_METHOD, NULL);
    if (!method) method = "GET";
    luaL_argcheck(L, strlen(method) < 16, 1, "method too long");
    const char *body = opt_string(L, K_BODY, &blen);
    size_t ualen = 0;
    const char *ua = opt_string(L, K_USER_AGENT, &ualen);
    const char *httpv = opt_string(L, K_HTTP_VERSION, NULL);
    const char *cainfo = opt_string(L, K_CAINFO, NULL);
    double timeout = opt_number(L, K_TIMEOUT, 30);
    double ctimeout = opt_number(L, K_CONNECT_TIMEOUT, 10);
    luaL_argcheck(L, timeout >= 0 && ctimeout >= 0, 1, "timeouts must be non-negative numbers");
    double max_size = opt_number(L, K_MAX_SIZE, (double)DEFAULT_MAX_SIZE);
    opt_get(L, K_FRESH);
    int fresh = lua_toboolean(L, -1);
    opt_get(L, K_DECODE);
    int decode = lua_toboolean(L, -1);
    opt_get(L, K_LEAN);
    int lean = lua_toboolean(L, -1);
    lua_pop(L, 3);

    ps_transfer *t = lua_newuserdatauv(L, sizeof *t, 3); /* transfer */
    memset(t, 0, sizeof *t);
    ps_ws_buf_init(&t->body, NULL, NULL);
    ps_ws_buf_init(&t->hdrs, NULL, NULL);
    t->pin = LUA_NOREF;
    luaL_setmetatable(L, TRANSFER_MT);
    opt_get(L, K_ON_DONE);
    lua_setiuservalue(L, -2, 1);                       /* transfer */
    opt_get(L, K_ON_ERROR);                    /* on_done's errors (else loop:on_error) */
    lua_setiuservalue(L, -2, 2);                       /* transfer */
    opt_get(L, K_DATA);                        /* on_done's second argument */
    lua_setiuservalue(L, -2, 3);                       /* transfer */
    t->loop = loop;
    t->decode = decode;
    t->lean = lean;
    t->owner.done = transfer_done;
    luaL_argcheck(L, ps_number_to_size(max_size, &t->max_size) == 0, 1,
                  "max_size must be a non-negative number");
    strcpy(t->method, method);
    int httpv_code = httpv && strcmp(httpv, "1.1") == 0 ? CURL_HTTP_VERSION_1_1
                                                        : CURL_HTTP_VERSION_2TLS;
    long ctimeout_ms = ctimeout > 0 ? ps_secs_to_ms(ctimeout) + 1 : 0L;
    /* perf (issue 13): a POST with a body that is safe to repeat (orders: an idempotency key)
     * reuses its options too; the callgrind profile of place_order showed curl_easy_reset and
     * the full set-up at ~10k instructions of its 268k. */
    char kind = !body && strcmp(method, "GET") == 0    ? 'G'
                : body && strcmp(method, "POST") == 0 ? 'P'
                                                      : 0;
    char sig[SIG_MAX];
    size_t siglen = 0;
    t->plain = kind && !fresh && make_sig(sig, &siglen, kind, ctimeout_ms, httpv_code, ua, ualen, cainfo);
    int configured;
    if (!easy_get(t, sig, siglen, &configured)) return luaL_error(L, "request: cannot create a curl handle");
    /* A configured handle was set up with these very bytes (the signature holds them), checked
     * then; raising here leaves the handle with t, whose close puts it back. */
    if (ua && !configured)
        luaL_argcheck(L, ps_header_value_ok(ua, ualen), 1,
                      "user_agent has a control character (CR/LF not allowed)");

    /* perf (issue 13): the lines this handle sent last time are kept; when this request's
     * lines are the same (the client's every GET: Accept, the key, ours), they go again
     * without being checked, copied and freed once more (callgrind: ~3.5k instructions a
     * call). Anything else is built afresh, with every check. */
    int bodiless = !body && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
    if (t->kept) {
        hlines same = {t->kept, 1};
        request_headers(L, t, &same, bodiless);
        if (same.match && !same.next) t->headers = t->kept, t->kept = NULL;
    }
    if (!t->headers) request_headers(L, t, NULL, bodiless);

    CURL *e = t->easy;
    if (configured) {
        /* Same options as the full path below leaves on a plain GET or POST (the same kind:
         * it is in the signature); only these differ. */
        curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)&t->owner);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout > 0 ? ps_secs_to_ms(timeout) + 1 : 0L);
        if (body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
        }
        goto add;
    }
    ps_easy_defaults(e, &t->owner, t->errbuf, cainfo, ctimeout);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    /* 0 is curl's "no limit", so a tiny positive timeout stays at least 1 ms. */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout > 0 ? ps_secs_to_ms(timeout) + 1 : 0L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");   /* whatever curl can decode */
    /* No CURLOPT_PIPEWAIT: with it, a call to a host that has a CONNECT_ONLY WebSocket
     * opening waited on that connection forever. HTTP/2 connections are still multiplexed
     * once they are up (the multi's default); only a second connection may open meanwhile. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)httpv_code);
    /* fresh=true: a request that is not safe to repeat (issue 10 item 4). curl re-sends a
     * request by itself only when it went out on a reused connection that died before any
     * answer byte; a connection of its own, closed after, is never reused, so never re-sent. */
    if (fresh) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    if (ua) curl_easy_setopt(e, CURLOPT_USERAGENT, ua);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    }
    if (strcmp(method, "GET") == 0) curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else {
        if (!body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, "");
        }
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }

add:;
    CURLMcode mc = curl_multi_add_handle(ps_loop_multi(loop), e);
    if (mc != CURLM_OK) return luaL_error(L, "request: %s", curl_multi_strerror(mc));
    t->state = T_RUNNING;
    lua_pushvalue(L, -1);
    t->pin = luaL_ref(L, LUA_REGISTRYINDEX);           /* transfer */
    return 1;
}

/* The headers a lean result keeps (polysim.client reads only these of a 2xx answer:
 * core.decode_ratelimit's four and the request id). */
static int client_header(const char *lname, size_t nn) {
    static const char *const names[] = {"x-ratelimit-limit", "x-ratelimit-remaining",
                                        "x-ratelimit-reset", "x-ratelimit-tier", "x-request-id"};
    if (nn < 12 || lname[0] != 'x' || lname[1] != '-') return 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (strlen(names[k]) == nn && memcmp(names[k], lname, nn) == 0) return 1;
    return 0;
}

/* Parses the raw header block into { lowercase-name = value } (repeats joined by ", ");
 * lean: only client_header's, and no table at all (0 returned, nothing pushed) when there
 * are none of them. perf (issue 13): a client call's answer had a table of every header
 * (callgrind: its strings, inserts and collection, then core.decode_ratelimit's look-ups,
 * ~3k instructions a call for the two headers of bench/ref_server, more for a real
 * server's ten); the client reads five names, and most answers carry none of them. */
static int push_headers(lua_State *L, const ps_ws_buf *h, int lean) {
    const char *p = (const char *)h->data, *end = p ? p + h->len : NULL;
    int have = 0;                                      /* the table is on the stack */
    if (!lean) {
        /* perf (issue 13): sized once for the lines there are (growing from empty rehashed
         * the table at 1, 2, 4 and 8 entries: push_headers was 16k instructions an order
         * answer). */
        int lines = 0;
        for (const char *c = p; c && c < end && (c = memchr(c, '\n', (size_t)(end - c))) != NULL; c++)
            lines++;
        lua_createtable(L, 0, lines > 1 ? lines - 1 : 0); /* hdrs (the status line is no header) */
        have = 1;
    }
    if (!p) return have;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    p = eol ? eol + 1 : end;                           /* skip the status line */
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && colon > p) {
            /* perf (issue 13): lower-cased on the C stack (a luaL_Buffer per name showed in
             * the profile); longer names through a luaL_Buffer. */
            size_t nn = (size_t)(colon - p);
            char lname[128];
            if (nn <= sizeof lname) {
                for (size_t i = 0; i < nn; i++)
                    lname[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
                if (lean && !client_header(lname, nn)) goto next;
                if (!have) {
                    lua_createtable(L, 0, 2);          /* hdrs */
                    have = 1;
                }
                lua_pushlstring(L, lname, nn);         /* hdrs name */
            } else {
                if (lean) goto next;                   /* none of client_header's */
                luaL_Buffer name;
                luaL_buffinit(L, &name);
                for (const char *c = p; c < colon; c++)
                    luaL_addchar(&name, (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c));
                luaL_pushresult(&name);                /* hdrs name */
            }
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -3) == LUA_TSTRING) {    /* hdrs name old */
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);                      /* hdrs name joined */
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v)); /* hdrs name value */
            }
            lua_rawset(L, -3);                         /* hdrs */
        }
    next:
        p = eol ? eol + 1 : end;
    }
    return have;
}

/* transfer:result() -> response | nil, err (transport failure). The response is
 * { status, headers, body, http_version, connects, time }; a transfer made with decode=true
 * whose answer is a 2xx with a body has data (the decoded JSON) or decode_error (why it is
 * not JSON) in place of body. A 2xx answer to a transfer made with lean=true (the client's)
 * has in headers only X-RateLimit-Limit/-Remaining/-Reset/-Tier and X-Request-Id, and no
 * headers field when it has none of them; nor http_version and time. */
static int l_result(lua_State *L) {
    ps_transfer *t = check_transfer(L, 1);
    luaL_argcheck(L, t->state == T_DONE, 1, "transfer is not done");
    if (t->result != CURLE_OK) {
        lua_pushnil(L);
        ps_error_push_transport(L, t->result, t->too_large, t->errbuf, (size_t)t->max_size);
        return 2;
    }
    long status = 0, version = 0, connects = 0;
    double total = 0;
    if (t->easy) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    }
    /* perf (issue 13): a lean 2xx answer has no http_version or time either (the client
     * reads neither; ~700 instructions a call with their look-ups). */
    int lean = t->lean && status >= 200 && status < 300;
    if (t->easy && !lean) {
        curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version);
        curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &total);
    }
    lua_createtable(L, 0, lean ? 4 : 6);               /* resp */
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    if (push_headers(L, &t->hdrs, lean)) lua_setfield(L, -2, "headers");
    /* perf (issue 13): decoded straight from the receive buffer, with no body string made
     * and copied first (the client's every successful call decodes its answer). */
    char jerr[160];
    if (t->decode && status >= 200 && status < 300 && t->body.len) {
        if (ps_json_push(L, (const char *)t->body.data, t->body.len, jerr, sizeof jerr))
            lua_setfield(L, -2, "data");
        else {
            lua_pushstring(L, jerr);
            lua_setfield(L, -2, "decode_error");
        }
    } else {
        lua_pushlstring(L, t->body.data ? (const char *)t->body.data : "", t->body.len);
        lua_setfield(L, -2, "body");
    }
    lua_pushinteger(L, connects);
    lua_setfield(L, -2, "connects");
    if (lean) return 1;
    lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2"
                      : version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
    lua_setfield(L, -2, "http_version");
    lua_pushnumber(L, total);
    lua_setfield(L, -2, "time");
    return 1;
}

/* transfer:take() -> the body bytes received since the last take (the buffer empties), and
 * the response status so far (0 before the status line). For streamed answers (SSE,
 * lua/polysim/sse.lua) read while the transfer runs; max_size then bounds what is unread. */
static int l_take(lua_State *L) {
    ps_transfer *t = check_transfer(L, 1);
    lua_pushlstring(L, t->body.data ? (const char *)t->body.data : "", t->body.len);
    t->body.len = 0;
    long status = 0;
    if (t->easy) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, status);
    return 2;
}

static int l_done(lua_State *L) {
    lua_pushboolean(L, check_transfer(L, 1)->state == T_DONE);
    return 1;
}

/* transfer:close(): cancels a running transfer and frees its buffers; idempotent. */
static int l_close(lua_State *L) {
    ps_transfer *t = check_transfer(L, 1);
    transfer_release(t);
    if (t->pin != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, t->pin);
        t->pin = LUA_NOREF;
    }
    if (t->state == T_RUNNING) t->state = T_IDLE;
    return 0;
}

static int l_tostring(lua_State *L) {
    ps_transfer *t = check_transfer(L, 1);
    lua_pushfstring(L, "polysim.Transfer (%s, %s)", t->method,
                    t->state == T_RUNNING ? "running" : t->state == T_DONE ? "done" : "closed");
    return 1;
}

void ps_http_open(lua_State *L) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;     /* written once, for all threads */
    pthread_once(&once, init_accept_encoding);
    static const luaL_Reg methods[] = {
        {"result", l_result}, {"done", l_done}, {"close", l_close}, {"take", l_take},
        {NULL, NULL},
    };
    ps_newclass(L, TRANSFER_MT, methods, l_close, l_close, l_tostring);
    luaL_getmetatable(L, TRANSFER_MT);                 /* mt */
    lua_getfield(L, -1, "__index");                    /* mt methods */
    lua_pushvalue(L, -2);                              /* mt methods mt */
    luaL_setfuncs(L, methods, 1);                      /* mt methods: again, mt as upvalue */
    lua_pop(L, 2);
    luaL_checkstack(L, K_COUNT, "core.request's keys");
    for (int k = 1; k < K_COUNT; k++) lua_pushstring(L, opt_keys[k]); /* core keys... */
    lua_pushcclosure(L, l_request, K_COUNT - 1);      /* core request */
    lua_setfield(L, -2, "request");
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "curl_version");
}
