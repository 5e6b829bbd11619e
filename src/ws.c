/* RFC 6455 framing without I/O (see ws.h), and its Lua bindings:
 *   core.ws_frame, core.ws_close_frame, core.ws_parser, core.ws_accept_key,
 *   core.ws_client_handshake, core.ws_check_handshake. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "internal.h"
#include "header.h"
#include "ws.h"

#define HANDSHAKE_MAX_HEADER 16384  /* response header bytes we wait for at most */
#define MSG_KEEP_CAP 65536          /* reassembly buffers above this are released per message */

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud, (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

/* ---------------------------------------------------------------------------------------
 * Small pure helpers
 * ------------------------------------------------------------------------------------- */

void ps_ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
                uint64_t offset) {
    uint8_t k[8];
    for (int j = 0; j < 8; j++) k[j] = key[(offset + (uint64_t)j) & 3];
    uint64_t kw;
    memcpy(&kw, k, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= kw;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ k[i & 7];
}

int ps_ws_random(void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += r, n -= (size_t)r;
    }
    return 0;
}

int ps_ws_close_code_valid(int code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Incremental UTF-8 validation (Unicode table 3-7): `need` continuation bytes still
 * expected, the next one in [lo, hi]. */
typedef struct { uint8_t need, lo, hi; } utf8_state;

static int utf8_run(utf8_state *st, const uint8_t *s, size_t n) {
    uint8_t need = st->need, lo = st->lo, hi = st->hi;
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i++];
        if (need == 0) {
            if (b < 0x80) {
                for (; i + 8 <= n; i += 8) { /* skip ASCII runs a word at a time */
                    uint64_t w;
                    memcpy(&w, s + i, 8);
                    if (w & 0x8080808080808080ull) break;
                }
                continue;
            }
            lo = 0x80, hi = 0xBF;
            if (b >= 0xC2 && b <= 0xDF) need = 1;
            else if (b == 0xE0) need = 2, lo = 0xA0;      /* no overlongs */
            else if (b == 0xED) need = 2, hi = 0x9F;      /* no surrogates */
            else if (b >= 0xE1 && b <= 0xEF) need = 2;
            else if (b == 0xF0) need = 3, lo = 0x90;      /* no overlongs */
            else if (b >= 0xF1 && b <= 0xF3) need = 3;
            else if (b == 0xF4) need = 3, hi = 0x8F;      /* nothing above U+10FFFF */
            else return -1;                               /* 80..C1, F5..FF */
        } else {
            if (b < lo || b > hi) return -1;
            need--, lo = 0x80, hi = 0xBF;
        }
    }
    st->need = need, st->lo = lo, st->hi = hi;
    return 0;
}

int ps_ws_utf8_valid(const uint8_t *s, size_t n) {
    utf8_state st = {0, 0x80, 0xBF};
    return utf8_run(&st, s, n) == 0 && st.need == 0;
}

/* ---------------------------------------------------------------------------------------
 * Parser
 * ------------------------------------------------------------------------------------- */

void ps_ws_init(ps_ws_conn *c, ps_ws_role role, size_t max_message, ps_ws_alloc alloc,
                void *alloc_ud) {
    memset(c, 0, sizeof *c);
    c->role = role;
    c->state = PS_WS_OPEN;
    c->max_message = max_message ? max_message : PS_WS_DEFAULT_MAX_MESSAGE;
    c->alloc = alloc ? alloc : default_alloc;
    c->alloc_ud = alloc_ud;
    c->hdr_need = 2;
}

static void msg_release(ps_ws_conn *c) {
    if (c->msg) c->alloc(c->alloc_ud, c->msg, c->msg_cap, 0);
    c->msg = NULL;
    c->msg_cap = 0;
}

void ps_ws_free(ps_ws_conn *c) {
    msg_release(c);
    c->msg_len = 0;
    c->state = PS_WS_FAILED;
}

static void emit(ps_ws_callback cb, void *ud, ps_ws_event_type type, int code,
                 const uint8_t *data, size_t len) {
    ps_ws_event ev;
    ev.type = type;
    ev.code = code;
    ev.data = data ? data : (const uint8_t *)"";
    ev.len = len;
    cb(ud, &ev);
}

/* Fails the connection: ERROR event, then everything is ignored. */
static void fail(ps_ws_conn *c, int code, const char *why, ps_ws_callback cb, void *ud) {
    c->state = PS_WS_FAILED;
    emit(cb, ud, PS_WS_EV_ERROR, code, (const uint8_t *)why, strlen(why));
}

/* Checks the first two header bytes; sets opcode/fin/masked and the full header size. */
static const char *check_start(ps_ws_conn *c) {
    uint8_t b0 = c->hdr[0], b1 = c->hdr[1], len7 = b1 & 0x7F;
    c->fin = b0 >> 7;
    c->opcode = b0 & 0x0F;
    c->masked = b1 >> 7;
    if (b0 & 0x70) return "reserved bits set";
    switch (c->opcode) {
    case PS_WS_OP_CONT: case PS_WS_OP_TEXT: case PS_WS_OP_BINARY:
    case PS_WS_OP_CLOSE: case PS_WS_OP_PING: case PS_WS_OP_PONG: break;
    default: return "unknown opcode";
    }
    if (c->role == PS_WS_CLIENT && c->masked) return "masked frame from server";
    if (c->role == PS_WS_SERVER && !c->masked) return "unmasked frame from client";
    if (c->opcode & 0x8) {
        if (!c->fin) return "fragmented control frame";
        if (len7 > PS_WS_MAX_CONTROL) return "control frame payload over 125 bytes";
    } else if (c->opcode == PS_WS_OP_CONT) {
        if (!c->msg_opcode) return "continuation frame with no message to continue";
    } else if (c->msg_opcode) {
        return "new data frame inside a fragmented message";
    }
    c->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (c->masked ? 4 : 0));
    return NULL;
}

static void end_frame(ps_ws_conn *c, ps_ws_callback cb, void *ud);

/* The header is complete: decode length and mask key, check sizes. */
static void begin_frame(ps_ws_conn *c, ps_ws_callback cb, void *ud) {
    uint8_t len7 = c->hdr[1] & 0x7F;
    const uint8_t *p = c->hdr + 2;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t)p[0] << 8 | p[1];
        p += 2;
    } else if (len7 == 127) {
        len = 0;
        for (int k = 0; k < 8; k++) len = len << 8 | p[k];
        p += 8;
        if (len >> 63) {
            fail(c, 1002, "64-bit payload length with the high bit set", cb, ud);
            return;
        }
    }
    if (c->masked) memcpy(c->mask, p, 4);
    if (c->opcode & 0x8) {
        c->ctrl_len = 0;
    } else {
        size_t have = c->opcode == PS_WS_OP_CONT ? c->msg_len : 0;
        if (len > c->max_message - have) {
            fail(c, 1009, "message too big", cb, ud);
            return;
        }
        if (c->opcode != PS_WS_OP_CONT) {                  /* a new message starts */
            if (c->msg_cap > MSG_KEEP_CAP) msg_release(c);
            c->msg_opcode = c->opcode;
            c->msg_len = 0;
            c->utf8_need = 0;
        }
    }
    c->frame_len = len;
    c->frame_got = 0;
    c->hdr_len = 0;
    c->hdr_need = 2;
    c->in_payload = 1;
    if (len == 0) end_frame(c, cb, ud);
}

/* The frame's payload is complete. Parser state is final before any callback runs. */
static void end_frame(ps_ws_conn *c, ps_ws_callback cb, void *ud) {
    c->in_payload = 0;
    if (c->opcode == PS_WS_OP_PING || c->opcode == PS_WS_OP_PONG) {
        emit(cb, ud, c->opcode == PS_WS_OP_PING ? PS_WS_EV_PING : PS_WS_EV_PONG, 0, c->ctrl,
             c->ctrl_len);
    } else if (c->opcode == PS_WS_OP_CLOSE) {
        int code = 1005;                                   /* "no status code present" */
        const uint8_t *reason = c->ctrl + 2;
        size_t rlen = c->ctrl_len >= 2 ? c->ctrl_len - 2 : 0;
        if (c->ctrl_len == 1) {
            fail(c, 1002, "close frame with a 1-byte payload", cb, ud);
            return;
        }
        if (c->ctrl_len >= 2) {
            code = c->ctrl[0] << 8 | c->ctrl[1];
            if (!ps_ws_close_code_valid(code)) {
                fail(c, 1002, "invalid close code", cb, ud);
                return;
            }
            if (!ps_ws_utf8_valid(reason, rlen)) {
                fail(c, 1002, "close reason is not valid UTF-8", cb, ud);
                return;
            }
        }
        c->state = PS_WS_CLOSED;
        emit(cb, ud, PS_WS_EV_CLOSE, code, reason, rlen);
    } else if (c->fin) {                                   /* last frame of a message */
        if (c->msg_opcode == PS_WS_OP_TEXT && c->utf8_need) {
            fail(c, 1007, "invalid UTF-8 in text message", cb, ud);
            return;
        }
        ps_ws_event_type t = c->msg_opcode == PS_WS_OP_TEXT ? PS_WS_EV_TEXT : PS_WS_EV_BINARY;
        c->msg_opcode = 0;
        emit(cb, ud, t, 0, c->msg, c->msg_len);
    }
}

/* Makes room for n more message bytes (msg_len + n <= max_message is already known). */
static int msg_grow(ps_ws_conn *c, size_t n) {
    size_t need = c->msg_len + n;
    if (need <= c->msg_cap) return 0;
    size_t cap = c->msg_cap ? c->msg_cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > c->max_message) cap = c->max_message;
    if (cap < need) cap = need;
    uint8_t *p = c->alloc(c->alloc_ud, c->msg, c->msg_cap, cap);
    if (!p) return -1;
    c->msg = p;
    c->msg_cap = cap;
    return 0;
}

/* Payload bytes of the current frame: src[0..take). */
static void payload(ps_ws_conn *c, const uint8_t *src, size_t take, ps_ws_callback cb,
                    void *ud) {
    if (c->opcode & 0x8) {
        uint8_t *dst = c->ctrl + c->ctrl_len;
        if (c->masked) ps_ws_mask(dst, src, take, c->mask, c->frame_got);
        else memcpy(dst, src, take);
        c->ctrl_len += take;
        c->frame_got += take;
        if (c->frame_got == c->frame_len) end_frame(c, cb, ud);
        return;
    }
    uint8_t *dst;
    utf8_state st = {c->utf8_need, c->utf8_lo, c->utf8_hi};
    if (!c->masked && c->fin && c->opcode != PS_WS_OP_CONT && take == c->frame_len) {
        /* An unfragmented unmasked message whole in this chunk: deliver it in place. */
        c->frame_got = take;
        c->in_payload = 0;
        if (c->opcode == PS_WS_OP_TEXT && (utf8_run(&st, src, take) || st.need)) {
            fail(c, 1007, "invalid UTF-8 in text message", cb, ud);
            return;
        }
        c->msg_opcode = 0;
        emit(cb, ud, c->opcode == PS_WS_OP_TEXT ? PS_WS_EV_TEXT : PS_WS_EV_BINARY, 0, src, take);
        return;
    }
    if (msg_grow(c, take)) {
        fail(c, 1011, "out of memory", cb, ud);
        return;
    }
    dst = c->msg + c->msg_len;
    if (c->masked) ps_ws_mask(dst, src, take, c->mask, c->frame_got);
    else memcpy(dst, src, take);
    c->msg_len += take;
    c->frame_got += take;
    if (c->msg_opcode == PS_WS_OP_TEXT) {
        if (utf8_run(&st, dst, take)) {
            fail(c, 1007, "invalid UTF-8 in text message", cb, ud);
            return;
        }
        c->utf8_need = st.need, c->utf8_lo = st.lo, c->utf8_hi = st.hi;
    }
    if (c->frame_got == c->frame_len) end_frame(c, cb, ud);
}

int ps_ws_feed(ps_ws_conn *c, const uint8_t *data, size_t n, ps_ws_callback cb, void *ud) {
    if (c->state != PS_WS_OPEN) return c->state;
    if (c->busy) {  /* re-entered, or a callback escaped by longjmp: the stream is lost */
        c->busy = 0;
        fail(c, 1011, "parser interrupted inside its callback", cb, ud);
        return c->state;
    }
    c->busy = 1;
    size_t i = 0;
    while (c->state == PS_WS_OPEN && i < n) {
        if (c->in_payload) {
            uint64_t want = c->frame_len - c->frame_got;
            size_t take = (uint64_t)(n - i) < want ? n - i : (size_t)want;
            const uint8_t *src = data + i;
            i += take;
            payload(c, src, take, cb, ud);
            continue;
        }
        while (c->hdr_len < c->hdr_need && i < n) c->hdr[c->hdr_len++] = data[i++];
        if (c->hdr_len < c->hdr_need) break;
        if (c->hdr_need == 2) {            /* first two bytes, not yet checked */
            const char *why = check_start(c);
            if (why) {
                fail(c, 1002, why, cb, ud);
                break;
            }
            if (c->hdr_need > 2) continue; /* extended length and/or mask key to come */
        }
        begin_frame(c, cb, ud);
    }
    c->busy = 0;
    return c->state;
}

/* ---------------------------------------------------------------------------------------
 * Frame building
 * ------------------------------------------------------------------------------------- */

size_t ps_ws_frame_header(uint8_t out[14], int opcode, int fin, uint64_t len,
                          const uint8_t *mask) {
    size_t h = 0;
    uint8_t m = mask ? 0x80 : 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[h++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = m | 127;
        for (int s = 56; s >= 0; s -= 8) out[h++] = (uint8_t)(len >> s);
    }
    if (mask) {
        memcpy(out + h, mask, 4);
        h += 4;
    }
    return h;
}

const char *ps_ws_frame_check(int opcode, int fin, uint64_t len) {
    switch (opcode) {
    case PS_WS_OP_CONT: case PS_WS_OP_TEXT: case PS_WS_OP_BINARY:
        return len >> 63 ? "payload too long" : NULL;
    case PS_WS_OP_CLOSE: case PS_WS_OP_PING: case PS_WS_OP_PONG:
        if (!fin) return "control frames cannot be fragmented";
        return len > PS_WS_MAX_CONTROL ? "control frame payload over 125 bytes" : NULL;
    default:
        return "unknown opcode";
    }
}

void ps_ws_buf_init(ps_ws_buf *b, ps_ws_alloc alloc, void *alloc_ud) {
    b->data = NULL;
    b->len = b->cap = 0;
    b->alloc = alloc ? alloc : default_alloc;
    b->alloc_ud = alloc_ud;
}

void ps_ws_buf_free(ps_ws_buf *b) {
    if (b->data) (b->alloc ? b->alloc : default_alloc)(b->alloc_ud, b->data, b->cap, 0);
    b->data = NULL;
    b->len = b->cap = 0;
}

int ps_ws_buf_reserve(ps_ws_buf *b, size_t extra) {
    if (extra <= b->cap - b->len) return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        errno = ENOMEM;
        return -1;
    }
    size_t need = b->len + extra, cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    uint8_t *p = (b->alloc ? b->alloc : default_alloc)(b->alloc_ud, b->data, b->cap, cap);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int ps_ws_buf_append(ps_ws_buf *b, const void *p, size_t n) {
    if (n == SIZE_MAX || ps_ws_buf_reserve(b, n + 1)) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int ps_ws_append_frame_masked(ps_ws_buf *b, int opcode, int fin, const void *payload_,
                              size_t len, const uint8_t *mask) {
    if (ps_ws_frame_check(opcode, fin, len)) {
        errno = EINVAL;
        return -1;
    }
    if (len > SIZE_MAX / 2 || ps_ws_buf_reserve(b, 14 + len)) {
        errno = ENOMEM;
        return -1;
    }
    uint8_t *p = b->data + b->len;
    size_t h = ps_ws_frame_header(p, opcode, fin, len, mask);
    if (len) {
        if (mask) ps_ws_mask(p + h, payload_, len, mask, 0);
        else memcpy(p + h, payload_, len);
    }
    b->len += h + len;
    return 0;
}

int ps_ws_append_frame(ps_ws_buf *b, ps_ws_role role, int opcode, int fin,
                       const void *payload_, size_t len) {
    uint8_t key[4];
    if (role == PS_WS_CLIENT && ps_ws_random(key, 4)) return -1;
    return ps_ws_append_frame_masked(b, opcode, fin, payload_, len,
                                     role == PS_WS_CLIENT ? key : NULL);
}

/* Close payload (code + reason) into out[125]; its length, or -1 when not sendable. */
static int close_payload(uint8_t out[PS_WS_MAX_CONTROL], int code, const char *reason,
                         size_t reason_len) {
    if (code == 0) return reason_len == 0 ? 0 : -1;
    if (!ps_ws_close_code_valid(code) || reason_len > PS_WS_MAX_CLOSE_REASON) return -1;
    if (reason_len && !ps_ws_utf8_valid((const uint8_t *)reason, reason_len)) return -1;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (reason_len) memcpy(out + 2, reason, reason_len);
    return (int)(2 + reason_len);
}

int ps_ws_append_close(ps_ws_buf *b, ps_ws_role role, int code, const char *reason,
                       size_t reason_len) {
    uint8_t pl[PS_WS_MAX_CONTROL];
    int n = close_payload(pl, code, reason, reason_len);
    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    return ps_ws_append_frame(b, role, PS_WS_OP_CLOSE, 1, pl, (size_t)n);
}

/* ---------------------------------------------------------------------------------------
 * Handshake
 * ------------------------------------------------------------------------------------- */

int ps_ws_make_key(char out[25]) {
    unsigned char raw[16];
    if (ps_ws_random(raw, sizeof raw)) return -1;
    ps_base64(raw, sizeof raw, out);
    return 0;
}


static int visible_ascii(const char *s) { /* non-empty, 0x21..0x7E only */
    if (!*s) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E) return 0;
    return 1;
}

/* "Name: value\r\n" lines: token names; values without control characters other than HT. */
static int valid_header_lines(const char *s) {
    while (*s) {
        const char *name = s;
        while (ps_header_tchar((unsigned char)*s)) s++;
        if (s == name || *s != ':') return 0;
        const char *value = ++s;
        while (*s && *s != '\r') s++;
        if (!ps_header_value_ok(value, (size_t)(s - value))) return 0;
        if (s[0] != '\r' || s[1] != '\n') return 0;
        s += 2;
    }
    return 1;
}

size_t ps_ws_client_request(char *out, size_t cap, const char *host, const char *path,
                            const char *extra, const char *key) {
    if (!visible_ascii(host) || path[0] != '/' || !visible_ascii(path) || !visible_ascii(key) ||
        (extra && !valid_header_lines(extra)))
        return 0;
    int r = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s\r\n",
                     path, host, key, extra ? extra : "");
    return r < 0 ? 0 : (size_t)r;
}

static int lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

static int name_is(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    if (n != k) return 0;
    for (size_t j = 0; j < n; j++)
        if (lower((unsigned char)s[j]) != lit[j]) return 0;
    return 1;
}

static int is_ows(int ch) { return ch == ' ' || ch == '\t'; }

/* 1 if the comma-separated list v[0..n) holds tok (case-insensitive). */
static int has_token(const char *v, size_t n, const char *tok) {
    size_t j = 0;
    while (j < n) {
        size_t a = j, b;
        while (j < n && v[j] != ',') j++;
        b = j++;
        while (a < b && is_ows((unsigned char)v[a])) a++;
        while (b > a && is_ows((unsigned char)v[b - 1])) b--;
        if (name_is(v + a, b - a, tok)) return 1;
    }
    return 0;
}

static int refuse(const char **err, const char *why) {
    if (err) *err = why;
    return -1;
}

int ps_ws_check_response(const char *resp, size_t n, const char *key, size_t *header_len,
                         int *status, const char **err) {
    static const char proto[] = "HTTP/1.";
    if (status) *status = 0;
    if (err) *err = NULL;
    if (n && memcmp(resp, proto, n < 7 ? n : 7) != 0) return refuse(err, "not an HTTP response");
    size_t lim = n < HANDSHAKE_MAX_HEADER ? n : HANDSHAKE_MAX_HEADER;
    const char *eol = memmem(resp, lim, "\r\n", 2);
    const char *end = memmem(resp, lim, "\r\n\r\n", 4);
    if (eol) { /* status line: HTTP/1.x SP 3DIGIT [SP reason] */
        size_t ln = (size_t)(eol - resp);
        if (ln < 12 || resp[7] < '0' || resp[7] > '9' || resp[8] != ' ' ||
            (ln > 12 && resp[12] != ' '))
            return refuse(err, "malformed status line");
        int st = 0;
        for (int k = 9; k < 12; k++) {
            if (resp[k] < '0' || resp[k] > '9') return refuse(err, "malformed status line");
            st = st * 10 + (resp[k] - '0');
        }
        if (status) *status = st;
        if (st != 101) return refuse(err, "server did not switch protocols (status not 101)");
    }
    if (!end) {
        if (n >= HANDSHAKE_MAX_HEADER) return refuse(err, "response header too large");
        return 0;
    }
    char want[29];
    ps_ws_accept_key(key, want);
    int upgrade = 0, connection = 0, accepts = 0, accept_ok = 0;
    const char *line = eol + 2;
    while (line < end + 2) {                  /* each header line up to the blank one */
        const char *le = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        size_t ln = (size_t)(le - line);
        if (memchr(line, '\n', ln) || memchr(line, '\r', ln) || memchr(line, '\0', ln))
            return refuse(err, "malformed header line");
        if (is_ows((unsigned char)line[0])) return refuse(err, "obsolete header line folding");
        const char *colon = memchr(line, ':', ln);
        if (!colon || colon == line) return refuse(err, "malformed header line");
        size_t nlen = (size_t)(colon - line);
        for (size_t j = 0; j < nlen; j++)
            if (!ps_header_tchar((unsigned char)line[j])) return refuse(err, "malformed header line");
        const char *v = colon + 1, *ve = le;
        while (v < ve && is_ows((unsigned char)*v)) v++;
        while (ve > v && is_ows((unsigned char)ve[-1])) ve--;
        size_t vlen = (size_t)(ve - v);
        if (name_is(line, nlen, "upgrade")) {
            upgrade |= has_token(v, vlen, "websocket");
        } else if (name_is(line, nlen, "connection")) {
            connection |= has_token(v, vlen, "upgrade");
        } else if (name_is(line, nlen, "sec-websocket-accept")) {
            accepts++;
            accept_ok = vlen == 28 && memcmp(v, want, 28) == 0;
        } else if (name_is(line, nlen, "sec-websocket-extensions")) {
            if (vlen) return refuse(err, "server selected an extension we did not offer");
        } else if (name_is(line, nlen, "sec-websocket-protocol")) {
            if (vlen) return refuse(err, "server selected a subprotocol we did not offer");
        }
        line = le + 2;
    }
    if (!upgrade) return refuse(err, "missing \"Upgrade: websocket\"");
    if (!connection) return refuse(err, "missing \"Connection: upgrade\"");
    if (accepts == 0) return refuse(err, "missing Sec-WebSocket-Accept");
    if (accepts > 1) return refuse(err, "more than one Sec-WebSocket-Accept");
    if (!accept_ok) return refuse(err, "Sec-WebSocket-Accept does not match the key");
    if (header_len) *header_len = (size_t)(end + 4 - resp);
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Lua bindings
 * ------------------------------------------------------------------------------------- */

#define PARSER_MT "polysim.WsParser"

typedef struct {
    ps_ws_conn conn;
    int closed;  /* close() ran: buffers released */
} lws_parser;

static lws_parser *check_parser(lua_State *L, int idx) {
    lws_parser *p = luaL_checkudata(L, idx, PARSER_MT);
    luaL_argcheck(L, !p->closed, idx, "attempt to use a closed " PARSER_MT);
    return p;
}

/* opcode as an integer or one of its names */
static int opcode_arg(lua_State *L, int idx) {
    static const char *const names[] = {"continuation", "text", "binary", "close",
                                        "ping", "pong", NULL};
    static const int codes[] = {0x0, 0x1, 0x2, 0x8, 0x9, 0xA};
    if (lua_type(L, idx) == LUA_TSTRING) return codes[luaL_checkoption(L, idx, NULL, names)];
    lua_Integer op = luaL_checkinteger(L, idx);
    luaL_argcheck(L, op >= 0 && op <= 0xF && !ps_ws_frame_check((int)op, 1, 0), idx,
                  "unknown opcode");
    return (int)op;
}

/* nil/false: unmasked; true: random key; 4-byte string: that key. */
static const uint8_t *mask_arg(lua_State *L, int idx, uint8_t key[4]) {
    if (lua_isnoneornil(L, idx) || (lua_isboolean(L, idx) && !lua_toboolean(L, idx))) return NULL;
    if (lua_isboolean(L, idx)) {
        if (ps_ws_random(key, 4)) luaL_error(L, "getrandom: %s", strerror(errno));
        return key;
    }
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    luaL_argcheck(L, n == 4, idx, "mask key must be 4 bytes");
    memcpy(key, s, 4);
    return key;
}

static void push_frame(lua_State *L, int opcode, int fin, const char *pl, size_t len,
                       const uint8_t *mask) {
    luaL_Buffer B;
    uint8_t *p = (uint8_t *)luaL_buffinitsize(L, &B, 14 + len);
    size_t h = ps_ws_frame_header(p, opcode, fin, len, mask);
    if (len) {
        if (mask) ps_ws_mask(p + h, (const uint8_t *)pl, len, mask, 0);
        else memcpy(p + h, pl, len);
    }
    luaL_pushresultsize(&B, h + len);                   /* frame */
}

/* core.ws_frame(opcode, payload="", fin=true, mask=nil) -> bytes */
static int l_ws_frame(lua_State *L) {
    int op = opcode_arg(L, 1);
    size_t len;
    const char *pl = luaL_optlstring(L, 2, "", &len);
    int fin = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
    uint8_t key[4];
    const uint8_t *mask = mask_arg(L, 4, key);
    const char *why = ps_ws_frame_check(op, fin, len);
    if (why) return luaL_argerror(L, 2, why);
    push_frame(L, op, fin, pl, len, mask);
    return 1;
}

/* core.ws_close_frame(code=nil, reason="", mask=nil) -> bytes */
static int l_ws_close_frame(lua_State *L) {
    lua_Integer code = luaL_optinteger(L, 1, 0);
    size_t rlen;
    const char *reason = luaL_optlstring(L, 2, "", &rlen);
    uint8_t key[4], pl[PS_WS_MAX_CONTROL];
    const uint8_t *mask = mask_arg(L, 3, key);
    luaL_argcheck(L, code == 0 || (code > 0 && code < 65536 &&
                                   ps_ws_close_code_valid((int)code)),
                  1, "not a close code that may be sent");
    luaL_argcheck(L, code != 0 || rlen == 0, 2, "a reason needs a code");
    luaL_argcheck(L, rlen <= PS_WS_MAX_CLOSE_REASON, 2, "reason over 123 bytes");
    luaL_argcheck(L, ps_ws_utf8_valid((const uint8_t *)reason, rlen), 2,
                  "reason is not valid UTF-8");
    int n = close_payload(pl, (int)code, reason, rlen);
    push_frame(L, PS_WS_OP_CLOSE, 1, (const char *)pl, (size_t)n, mask);
    return 1;
}

/* core.ws_parser{role="client"|"server", max_message=1048576} -> polysim.WsParser */
static int l_ws_parser(lua_State *L) {
    ps_ws_role role = PS_WS_CLIENT;
    size_t max = PS_WS_DEFAULT_MAX_MESSAGE;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        if (lua_getfield(L, 1, "role") != LUA_TNIL) {   /* opts role */
            const char *r = lua_tostring(L, -1);
            if (r && strcmp(r, "server") == 0) role = PS_WS_SERVER;
            else if (!r || strcmp(r, "client") != 0)
                return luaL_argerror(L, 1, "role must be \"client\" or \"server\"");
        }
        lua_pop(L, 1);                                  /* opts */
        if (lua_getfield(L, 1, "max_message") != LUA_TNIL) {
            int isint;
            lua_Integer m = lua_tointegerx(L, -1, &isint);
            if (!isint || m < 1 || (lua_Unsigned)m > SIZE_MAX / 2)
                return luaL_argerror(L, 1, "max_message must be a positive integer");
            max = (size_t)m;
        }
        lua_pop(L, 1);                                  /* opts */
    }
    void *aud;
    lua_Alloc af = lua_getallocf(L, &aud);
    lws_parser *p = lua_newuserdatauv(L, sizeof *p, 0); /* opts? parser */
    ps_ws_init(&p->conn, role, max, af, aud);
    p->closed = 0;
    luaL_setmetatable(L, PARSER_MT);
    return 1;
}

typedef struct {
    lua_State *L;
    lua_Integer n;
} feed_ctx;

static void feed_event(void *ud, const ps_ws_event *ev) {
    static const char *const names[] = {"text", "binary", "ping", "pong", "close", "error"};
    feed_ctx *f = ud;
    lua_State *L = f->L;                                /* ... events */
    lua_createtable(L, 0, 3);                           /* ... events ev */
    lua_pushstring(L, names[ev->type]);
    lua_setfield(L, -2, "type");
    if (ev->type == PS_WS_EV_CLOSE || ev->type == PS_WS_EV_ERROR) {
        lua_pushinteger(L, ev->code);
        lua_setfield(L, -2, "code");
        lua_pushlstring(L, (const char *)ev->data, ev->len);
        lua_setfield(L, -2, "reason");
    } else {
        lua_pushlstring(L, (const char *)ev->data, ev->len);
        lua_setfield(L, -2, "data");
    }
    lua_rawseti(L, -2, ++f->n);                         /* ... events */
}

/* parser:feed(bytes) -> {event, ...} (empty once a close or error was reported) */
static int l_parser_feed(lua_State *L) {
    lws_parser *p = check_parser(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    lua_newtable(L);                                    /* parser bytes events */
    feed_ctx f = {L, 0};
    ps_ws_feed(&p->conn, (const uint8_t *)s, n, feed_event, &f);
    return 1;
}

static const char *state_name(const lws_parser *p) {
    static const char *const names[] = {"open", "closed", "failed"};
    return names[p->conn.state];
}

/* parser:state() -> "open" | "closed" (peer's close received) | "failed" (error reported) */
static int l_parser_state(lua_State *L) {
    lua_pushstring(L, state_name(check_parser(L, 1)));
    return 1;
}

/* parser:close(): releases the buffers; idempotent; also __gc and __close. */
static int l_parser_close(lua_State *L) {
    lws_parser *p = luaL_checkudata(L, 1, PARSER_MT);
    if (!p->closed) {
        ps_ws_free(&p->conn);
        p->closed = 1;
    }
    return 0;
}

static int l_parser_tostring(lua_State *L) {
    lws_parser *p = luaL_checkudata(L, 1, PARSER_MT);
    if (p->closed) lua_pushfstring(L, PARSER_MT " (closed handle): %p", (void *)p);
    else lua_pushfstring(L, PARSER_MT " (%s, %s): %p",
                         p->conn.role == PS_WS_SERVER ? "server" : "client", state_name(p),
                         (void *)p);
    return 1;
}

/* core.ws_accept_key(client_key) -> Sec-WebSocket-Accept value */
static int l_ws_accept_key(lua_State *L) {
    size_t n;
    const char *key = luaL_checklstring(L, 1, &n);
    luaL_argcheck(L, strlen(key) == n, 1, "key contains a NUL byte");
    char out[29];
    ps_ws_accept_key(key, out);
    lua_pushstring(L, out);
    return 1;
}

static int reserved_header(const char *name, size_t n) {
    static const char *const names[] = {"host", "upgrade", "connection", "sec-websocket-key",
                                        "sec-websocket-version", NULL};
    for (int k = 0; names[k]; k++)
        if (name_is(name, n, names[k])) return 1;
    return 0;
}

/* Writes "Name: value\r\n" for each pair of table t into out (NULL: only counts) and
 * returns the length. Raises on a bad name or value. Table order: same in both passes. */
static size_t header_lines(lua_State *L, int t, char *out) {
    size_t total = 0;
    lua_pushnil(L);                                     /* ... nil */
    while (lua_next(L, t)) {                            /* ... name value */
        size_t nl, vl;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, 3, "headers must map strings to strings");
        const char *name = lua_tolstring(L, -2, &nl), *value = lua_tolstring(L, -1, &vl);
        if (!ps_header_name_ok(name, nl))
            luaL_argerror(L, 3, lua_pushfstring(L, "bad header name '%s'", name));
        if (reserved_header(name, nl))
            luaL_argerror(L, 3, lua_pushfstring(L, "header '%s' is set by the handshake", name));
        if (!ps_header_value_ok(value, vl))
            luaL_argerror(L, 3, lua_pushfstring(L, "bad value for header '%s'", name));
        if (out) {
            memcpy(out + total, name, nl);
            memcpy(out + total + nl, ": ", 2);
            memcpy(out + total + nl + 2, value, vl);
            memcpy(out + total + nl + 2 + vl, "\r\n", 2);
        }
        total += nl + vl + 4;
        lua_pop(L, 1);                                  /* ... name */
    }
    return total;                                       /* ... */
}

/* core.ws_client_handshake(host, path [, headers]) -> request, key */
static int l_ws_client_handshake(lua_State *L) {
    const char *host = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    luaL_argcheck(L, visible_ascii(host), 1, "host must be printable ASCII without spaces");
    luaL_argcheck(L, path[0] == '/' && visible_ascii(path), 2,
                  "path must start with '/' and be printable ASCII without spaces");
    const char *extra = NULL;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        size_t n = header_lines(L, 3, NULL);
        char *scratch = lua_newuserdatauv(L, n + 1, 0); /* host path headers scratch */
        header_lines(L, 3, scratch);
        scratch[n] = '\0';
        extra = scratch;
    }
    char key[25];
    if (ps_ws_make_key(key)) return luaL_error(L, "getrandom: %s", strerror(errno));
    size_t len = ps_ws_client_request(NULL, 0, host, path, extra, key);
    luaL_argcheck(L, len > 0, 3, "malformed header lines");
    luaL_Buffer B;
    char *out = luaL_buffinitsize(L, &B, len + 1);
    ps_ws_client_request(out, len + 1, host, path, extra, key);
    luaL_pushresultsize(&B, len);                       /* ... request */
    lua_pushstring(L, key);                             /* ... request key */
    return 2;
}

/* core.ws_check_handshake(response, key)
 *   -> true, header_len | false (incomplete) | nil, message, "WS_HANDSHAKE", status */
static int l_ws_check_handshake(lua_State *L) {
    size_t n, hlen = 0;
    const char *resp = luaL_checklstring(L, 1, &n);
    const char *key = luaL_checkstring(L, 2);
    int status = 0;
    const char *err = NULL;
    int r = ps_ws_check_response(resp, n, key, &hlen, &status, &err);
    if (r > 0) {
        lua_pushboolean(L, 1);
        lua_pushinteger(L, (lua_Integer)hlen);
        return 2;
    }
    if (r == 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushliteral(L, "WS_HANDSHAKE");
    if (status) lua_pushinteger(L, status);
    else lua_pushnil(L);
    return 4;
}

void ps_ws_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"feed", l_parser_feed}, {"state", l_parser_state}, {"close", l_parser_close},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", l_parser_close}, {"__close", l_parser_close},
        {"__tostring", l_parser_tostring}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"ws_frame", l_ws_frame},
        {"ws_close_frame", l_ws_close_frame},
        {"ws_parser", l_ws_parser},
        {"ws_accept_key", l_ws_accept_key},
        {"ws_client_handshake", l_ws_client_handshake},
        {"ws_check_handshake", l_ws_check_handshake},
        {NULL, NULL}};
    luaL_newmetatable(L, PARSER_MT);                    /* core mt */
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);                            /* core mt methods */
    lua_setfield(L, -2, "__index");                     /* core mt */
    lua_pop(L, 1);                                      /* core */
    luaL_setfuncs(L, funcs, 0);                         /* core */
}
