/* libFuzzer target for the WebSocket framing in src/ws.c.
 *
 * Input layout: byte 0 = split mode and PRNG seed bits, byte 1 = max_message choice,
 * the rest = the byte stream. For each role the stream is parsed twice: in one chunk and in
 * the chunking chosen by byte 0; both runs must report the same events and end in the same
 * state. Invariants checked on every event:
 *   - nothing is reported after CLOSE or ERROR;
 *   - messages are <= max_message, control payloads <= 125, close reasons <= 123;
 *   - text messages and close reasons are valid UTF-8 (checked by a separate decoder);
 *   - ERROR codes are 1002/1007/1009/1011 with a non-empty reason of <= 123 bytes;
 *   - no single allocation exceeds max_message; everything is freed by ps_ws_free.
 * Delivered messages are rebuilt with the frame builders (masked and fragmented as the
 * other role would send them) and must parse back to the same event. The same input also
 * goes through the handshake response checker. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ws.h"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* ---- a counting allocator ---------------------------------------------------------- */

typedef struct {
    size_t live;      /* bytes currently allocated */
    size_t limit;     /* largest single block allowed */
} alloc_stats;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    alloc_stats *st = ud;
    if (ptr) st->live -= osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    CHECK(nsize <= st->limit);
    void *p = realloc(ptr, nsize);
    CHECK(p != NULL);
    st->live += nsize;
    return p;
}

/* ---- reference UTF-8 check: decode code points, then judge them ----------------------- */

static int utf8_ref(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t b = s[i], cp, min;
        size_t len;
        if (b < 0x80) { i++; continue; }
        if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F, min = 0x80;
        else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F, min = 0x800;
        else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07, min = 0x10000;
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

/* ---- event log ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *log;
    size_t len, cap;
    int finished;           /* CLOSE or ERROR seen */
    size_t max_message;
    int nmsgs;              /* messages kept for the round trip */
    struct { int type; size_t off, len; } msgs[8];
} recorder;

static void log_bytes(recorder *r, const void *p, size_t n) {
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + n) cap *= 2;
        r->log = realloc(r->log, cap);
        CHECK(r->log != NULL);
        r->cap = cap;
    }
    memcpy(r->log + r->len, p, n);
    r->len += n;
}

static void on_event(void *ud, const ps_ws_event *ev) {
    recorder *r = ud;
    CHECK(!r->finished);
    CHECK(ev->data != NULL);
    switch (ev->type) {
    case PS_WS_EV_TEXT:
        CHECK(utf8_ref(ev->data, ev->len));
        /* fall through */
    case PS_WS_EV_BINARY:
        CHECK(ev->len <= r->max_message);
        CHECK(ev->code == 0);
        break;
    case PS_WS_EV_PING:
    case PS_WS_EV_PONG:
        CHECK(ev->len <= PS_WS_MAX_CONTROL);
        break;
    case PS_WS_EV_CLOSE:
        CHECK(ev->code == 1005 ? ev->len == 0 : ps_ws_close_code_valid(ev->code));
        CHECK(ev->len <= PS_WS_MAX_CLOSE_REASON);
        CHECK(utf8_ref(ev->data, ev->len));
        r->finished = 1;
        break;
    case PS_WS_EV_ERROR:
        CHECK(ev->code == 1002 || ev->code == 1007 || ev->code == 1009 || ev->code == 1011);
        CHECK(ev->len > 0 && ev->len <= PS_WS_MAX_CLOSE_REASON);
        CHECK(strlen((const char *)ev->data) == ev->len);
        r->finished = 1;
        break;
    default:
        CHECK(0);
    }
    uint32_t head[3] = {(uint32_t)ev->type, (uint32_t)ev->code, (uint32_t)ev->len};
    log_bytes(r, head, sizeof head);
    size_t off = r->len;
    log_bytes(r, ev->data, ev->len);
    if ((ev->type == PS_WS_EV_TEXT || ev->type == PS_WS_EV_BINARY) && r->nmsgs < 8) {
        r->msgs[r->nmsgs].type = ev->type;
        r->msgs[r->nmsgs].off = off;
        r->msgs[r->nmsgs].len = ev->len;
        r->nmsgs++;
    }
}

/* ---- runs ---------------------------------------------------------------------------- */

static uint32_t prng(uint32_t *s) { /* xorshift32 */
    uint32_t x = *s ? *s : 0x9E3779B9u;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return *s = x;
}

/* Parses data in chunks: mode 0 one chunk, 1 byte by byte, 2 random sizes 1..16,
 * 3 random sizes 1..300 with empty feeds mixed in. Returns the final state. */
static int run(ps_ws_role role, size_t max, const uint8_t *data, size_t n, int mode,
               uint32_t seed, recorder *r) {
    alloc_stats st = {0, 0};
    ps_ws_conn c;
    ps_ws_init(&c, role, max, counting_alloc, &st);  /* allocates nothing */
    r->max_message = c.max_message;
    st.limit = c.max_message;                        /* no block beyond max_message */
    int state = PS_WS_OPEN;
    size_t i = 0;
    while (i < n) {
        size_t k = n - i;
        if (mode == 1) k = 1;
        else if (mode == 2) k = 1 + prng(&seed) % 16;
        else if (mode == 3) k = prng(&seed) % 301;
        if (k > n - i) k = n - i;
        int s = ps_ws_feed(&c, data + i, k, on_event, r);
        CHECK(s == PS_WS_OPEN || r->finished);
        if (state != PS_WS_OPEN) CHECK(s == state);    /* terminal states stick */
        state = s;
        i += k;
    }
    if (n == 0) state = ps_ws_feed(&c, NULL, 0, on_event, r);
    CHECK(state == c.state);
    CHECK(c.msg_cap <= c.max_message);
    ps_ws_free(&c);
    ps_ws_free(&c); /* idempotent */
    CHECK(st.live == 0);
    return state;
}

/* A message delivered to `role` is rebuilt as the peer would send it (in 1..3 fragments
 * with a ping in between) and must parse back to exactly that message. */
static void round_trip(ps_ws_role role, size_t max, int type, const uint8_t *msg, size_t len,
                       uint32_t seed) {
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    const uint8_t *mask = role == PS_WS_SERVER ? key : NULL;
    ps_ws_buf b;
    ps_ws_buf_init(&b, NULL, NULL);
    size_t cut1 = len ? prng(&seed) % (len + 1) : 0, cut2 = cut1 + (len - cut1) / 2;
    int op = type == PS_WS_EV_TEXT ? PS_WS_OP_TEXT : PS_WS_OP_BINARY;
    CHECK(ps_ws_append_frame_masked(&b, op, 0, msg, cut1, mask) == 0);
    CHECK(ps_ws_append_frame_masked(&b, PS_WS_OP_PING, 1, "p", 1, mask) == 0);
    CHECK(ps_ws_append_frame_masked(&b, PS_WS_OP_CONT, 0, msg + cut1, cut2 - cut1, mask) == 0);
    CHECK(ps_ws_append_frame_masked(&b, PS_WS_OP_CONT, 1, msg + cut2, len - cut2, mask) == 0);
    CHECK(ps_ws_append_close(&b, role == PS_WS_SERVER ? PS_WS_CLIENT : PS_WS_SERVER, 1000,
                             "ok", 2) == 0);
    recorder r = {0};
    CHECK(run(role, max, b.data, b.len, (int)(seed & 3), seed, &r) == PS_WS_CLOSED);
    CHECK(r.nmsgs == 1);
    CHECK(r.msgs[0].type == type && r.msgs[0].len == len);
    CHECK(len == 0 || memcmp(r.log + r.msgs[0].off, msg, len) == 0);
    free(r.log);
    ps_ws_buf_free(&b);
}

static void check_handshake(const uint8_t *data, size_t n) {
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    const char *s = (const char *)data, *err = NULL;
    size_t hlen = 0, hlen2 = 0;
    int status = -1;
    int r = ps_ws_check_response(s, n, key, &hlen, &status, &err);
    CHECK(r >= -1 && r <= 1);
    CHECK((r < 0) == (err != NULL));
    CHECK(status >= 0 && status <= 999);
    if (r == 1) {
        CHECK(status == 101);
        CHECK(hlen >= 4 && hlen <= n && memcmp(s + hlen - 4, "\r\n\r\n", 4) == 0);
        /* the header alone is enough, and the answer does not depend on what follows */
        CHECK(ps_ws_check_response(s, hlen, key, &hlen2, NULL, NULL) == 1 && hlen2 == hlen);
        CHECK(ps_ws_check_response(s, hlen - 1, key, NULL, NULL, NULL) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const size_t maxes[16] = {0, 1, 2, 3, 5, 10, 64, 125, 126, 127, 200,
                                     1000, 4096, 65535, 65536, 100000};
    check_handshake(data, size);
    if (size < 2) return 0;
    int mode = data[0] & 3;
    uint32_t seed = (uint32_t)data[0] * 2654435761u + (uint32_t)size;
    size_t max = maxes[data[1] & 15];
    const uint8_t *stream = data + 2;
    size_t n = size - 2;
    for (int role = PS_WS_CLIENT; role <= PS_WS_SERVER; role++) {
        recorder whole = {0}, split = {0};
        int s1 = run((ps_ws_role)role, max, stream, n, 0, seed, &whole);
        int s2 = run((ps_ws_role)role, max, stream, n, mode ? mode : 1, seed, &split);
        CHECK(s1 == s2);
        CHECK(whole.len == split.len);
        CHECK(whole.len == 0 || memcmp(whole.log, split.log, whole.len) == 0);
        for (int k = 0; k < whole.nmsgs; k++)
            round_trip((ps_ws_role)role, max, whole.msgs[k].type, whole.log + whole.msgs[k].off,
                       whole.msgs[k].len, seed + (uint32_t)k);
        free(whole.log);
        free(split.log);
    }
    return 0;
}
