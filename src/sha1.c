/* SHA-1 (FIPS 180-4), base64 (RFC 4648 with padding) and the WebSocket accept key
 * (RFC 6455 §4.2.2). SHA-1 is here only for Sec-WebSocket-Accept: no security rests on it. */
#include <string.h>
#include "internal.h"
#include "ws.h"

static uint32_t rol32(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)      { f = (b & c) | (~b & d);          k = 0x5A827999u; }
        else if (i < 40) { f = b ^ c ^ d;                   k = 0x6ED9EBA1u; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDCu; }
        else             { f = b ^ c ^ d;                   k = 0xCA62C1D6u; }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol32(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

/* Streaming context, so that the accept key needs no copy of an arbitrarily long key. */
typedef struct {
    uint32_t h[5];
    uint64_t n;                                      /* bytes hashed so far */
    unsigned char buf[64];
} sha1_ctx;

static void sha1_init(sha1_ctx *c) {
    static const uint32_t h0[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u,
                                   0xC3D2E1F0u};
    memcpy(c->h, h0, sizeof h0);
    c->n = 0;
}

static void sha1_update(sha1_ctx *c, const void *data, size_t n) {
    const unsigned char *p = data;
    size_t used = (size_t)(c->n % 64);
    c->n += n;
    if (used) {
        size_t take = 64 - used < n ? 64 - used : n;
        memcpy(c->buf + used, p, take);
        p += take, n -= take;
        if (used + take < 64) return;
        sha1_block(c->h, c->buf);
    }
    for (; n >= 64; n -= 64, p += 64) sha1_block(c->h, p);
    if (n) memcpy(c->buf, p, n);
}

static void sha1_final(sha1_ctx *c, unsigned char out[20]) {
    uint64_t bits = c->n * 8;
    unsigned char pad[72] = {0x80};                  /* 0x80, zeros up to 56 mod 64, length */
    size_t used = (size_t)(c->n % 64);
    size_t plen = (used < 56 ? 56 - used : 120 - used);
    for (int i = 0; i < 8; i++) pad[plen + 7 - i] = (unsigned char)(bits >> (8 * i));
    sha1_update(c, pad, plen + 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
}

void ps_sha1(const void *data, size_t n, unsigned char out[20]) {
    sha1_ctx c;
    sha1_init(&c);
    sha1_update(&c, data, n);
    sha1_final(&c, out);
}

size_t ps_base64(const unsigned char *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (; n >= 3; n -= 3, in += 3) {
        uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n) {
        uint32_t v = (uint32_t)in[0] << 16 | (n == 2 ? (uint32_t)in[1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = n == 2 ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

void ps_ws_accept_key(const char *client_key, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[20];
    sha1_ctx c;
    sha1_init(&c);
    sha1_update(&c, client_key, strlen(client_key));
    sha1_update(&c, guid, sizeof guid - 1);
    sha1_final(&c, digest);
    ps_base64(digest, 20, out);                      /* 28 chars + NUL */
}
