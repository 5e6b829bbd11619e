/* RFC 6455 WebSocket framing with no I/O: an incremental parser/assembler, frame builders,
 * and the client side of the opening handshake. Usable by both roles.
 *
 * Nothing here touches a socket, a clock or Lua (except ps_ws_open, the binding in ws.c).
 * Randomness (mask keys, Sec-WebSocket-Key) comes from getrandom(2).
 * Every function is internal to polysim.core (built with -fvisibility=hidden). */
#ifndef POLYSIM_WS_H
#define POLYSIM_WS_H

#include <stddef.h>
#include <stdint.h>

/* Opcodes (RFC 6455 §5.2). */
enum {
    PS_WS_OP_CONT = 0x0, PS_WS_OP_TEXT = 0x1, PS_WS_OP_BINARY = 0x2,
    PS_WS_OP_CLOSE = 0x8, PS_WS_OP_PING = 0x9, PS_WS_OP_PONG = 0xA
};

/* Which end we are. A client masks what it sends and requires unmasked input; a server
 * sends unmasked frames and requires masked input. */
typedef enum { PS_WS_CLIENT = 0, PS_WS_SERVER = 1 } ps_ws_role;

#define PS_WS_DEFAULT_MAX_MESSAGE ((size_t)1 << 20) /* 1 MiB */
#define PS_WS_MAX_CONTROL 125                        /* payload bytes of a control frame */
#define PS_WS_MAX_CLOSE_REASON 123                   /* 125 minus the 2-byte code */

/* Same signature as lua_Alloc, so lua_getallocf()'s result can be passed as is.
 * NULL everywhere below means realloc/free. */
typedef void *(*ps_ws_alloc)(void *ud, void *ptr, size_t osize, size_t nsize);

/* ---------------------------------------------------------------------------------------
 * Parser / assembler
 * ------------------------------------------------------------------------------------- */

typedef enum {
    PS_WS_EV_TEXT,   /* complete text message; data is valid UTF-8 */
    PS_WS_EV_BINARY, /* complete binary message */
    PS_WS_EV_PING,   /* data = ping payload (0..125 bytes); answer with a PONG echoing it */
    PS_WS_EV_PONG,   /* data = pong payload */
    PS_WS_EV_CLOSE,  /* peer's close: code (1005 when the frame had no payload), data = reason */
    PS_WS_EV_ERROR   /* protocol failure: code = close code to send (1002, 1007, 1009, 1011),
                        data = reason (static ASCII text, also fine as a close reason) */
} ps_ws_event_type;

typedef struct ps_ws_event {
    ps_ws_event_type type;
    int code;              /* CLOSE and ERROR only, 0 otherwise */
    const uint8_t *data;   /* never NULL; valid only until the callback returns */
    size_t len;
} ps_ws_event;

/* Called once per event. It must not call ps_ws_feed or ps_ws_free on the same conn.
 * If it does not return (longjmp, e.g. a Lua error), the conn stays memory-safe; the rest
 * of that chunk is lost and the next ps_ws_feed reports ERROR 1011. */
typedef void (*ps_ws_callback)(void *ud, const ps_ws_event *ev);

/* ps_ws_feed results (also ps_ws_conn.state). */
enum { PS_WS_OPEN = 0, PS_WS_CLOSED = 1, PS_WS_FAILED = 2 };

/* One connection's receive side. The fields are private to ws.c; the struct is public only
 * so that it can be embedded (e.g. in a Lua userdata). */
typedef struct ps_ws_conn {
    ps_ws_role role;
    int state;                /* PS_WS_OPEN / PS_WS_CLOSED / PS_WS_FAILED */
    int busy;                 /* inside ps_ws_feed */
    size_t max_message;
    ps_ws_alloc alloc;
    void *alloc_ud;
    /* current frame */
    uint8_t hdr[14];
    uint8_t hdr_len, hdr_need; /* header bytes held / needed so far */
    uint8_t in_payload;
    uint8_t opcode, fin, masked;
    uint8_t mask[4];
    uint64_t frame_len, frame_got;
    /* message being reassembled (TEXT or BINARY; 0 = none) */
    uint8_t msg_opcode;
    uint8_t utf8_need, utf8_lo, utf8_hi; /* incremental UTF-8 validation state */
    uint8_t *msg;
    size_t msg_len, msg_cap;
    /* control frame payload */
    size_t ctrl_len;
    uint8_t ctrl[PS_WS_MAX_CONTROL];
} ps_ws_conn;

/* Prepares c. max_message: largest reassembled message accepted (0 = 1 MiB default);
 * larger messages fail with 1009 before any memory is allocated for them. alloc/alloc_ud:
 * allocator for the reassembly buffer (NULL = realloc/free). Allocates nothing itself. */
void ps_ws_init(ps_ws_conn *c, ps_ws_role role, size_t max_message, ps_ws_alloc alloc,
                void *alloc_ud);
/* Releases c's buffers. Idempotent; c may be ps_ws_init'ed again afterwards. After free,
 * ps_ws_feed reports nothing and returns PS_WS_FAILED. */
void ps_ws_free(ps_ws_conn *c);

/* Consumes data[0..n) (any split of the stream gives the same events) and calls cb for each
 * event in order. Stops at the first CLOSE or ERROR event: from then on input is ignored.
 * Returns the state after the call: PS_WS_OPEN, PS_WS_CLOSED (CLOSE delivered) or
 * PS_WS_FAILED (ERROR delivered). data may be NULL when n == 0.
 * The reassembly buffer grows with the bytes actually received (never from a declared
 * length), is capped at max_message, and is released after a message larger than 64 KiB. */
int ps_ws_feed(ps_ws_conn *c, const uint8_t *data, size_t n, ps_ws_callback cb, void *ud);

/* ---------------------------------------------------------------------------------------
 * Frame building
 * ------------------------------------------------------------------------------------- */

/* Writes a frame header into out and returns its length (2..14). mask: 4-byte masking key,
 * or NULL for an unmasked (server) frame. Performs no validation; see ps_ws_frame_check. */
size_t ps_ws_frame_header(uint8_t out[14], int opcode, int fin, uint64_t len,
                          const uint8_t *mask);
/* NULL when (opcode, fin, len) is a frame we may send; otherwise a static message
 * (unknown opcode, fragmented or over-125-byte control frame). */
const char *ps_ws_frame_check(int opcode, int fin, uint64_t len);
/* dst[i] = src[i] ^ key[(offset + i) % 4] for i in [0, n). dst may equal src. */
void ps_ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
                uint64_t offset);
/* getrandom(2) n bytes into buf. 0 on success, -1 with errno. */
int ps_ws_random(void *buf, size_t n);
/* 1 if code may appear in a close frame on the wire (1000-1003, 1007-1014, 3000-4999). */
int ps_ws_close_code_valid(int code);
/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates, or > U+10FFFF). */
int ps_ws_utf8_valid(const uint8_t *s, size_t n);

/* The core's one growable byte buffer (WebSocket queues, HTTP bodies and headers, the
 * client handshake): bytes are data[0..len). The owner reads from data and resets len;
 * appending may move data (realloc). */
typedef struct ps_ws_buf {
    uint8_t *data;
    size_t len, cap;
    ps_ws_alloc alloc;
    void *alloc_ud;
} ps_ws_buf;

void ps_ws_buf_init(ps_ws_buf *b, ps_ws_alloc alloc, void *alloc_ud); /* allocates nothing */
void ps_ws_buf_free(ps_ws_buf *b);                                   /* idempotent */
/* Ensures room for `extra` more bytes. 0, or -1 with errno = ENOMEM. */
int ps_ws_buf_reserve(ps_ws_buf *b, size_t extra);
/* Appends n bytes and keeps a NUL after them (not counted in len), so the data can be read
 * as a C string. 0, or -1 with errno = ENOMEM (b unchanged). */
int ps_ws_buf_append(ps_ws_buf *b, const void *p, size_t n);

/* Appends one complete frame. role PS_WS_CLIENT masks with a fresh getrandom() key;
 * PS_WS_SERVER sends unmasked. Returns 0, or -1 with errno (EINVAL: ps_ws_frame_check
 * refused the frame; ENOMEM; getrandom's errno); on failure b is unchanged. */
int ps_ws_append_frame(ps_ws_buf *b, ps_ws_role role, int opcode, int fin,
                       const void *payload, size_t len);
/* Same with an explicit mask key (NULL = unmasked). */
int ps_ws_append_frame_masked(ps_ws_buf *b, int opcode, int fin, const void *payload,
                              size_t len, const uint8_t *mask);
/* Appends a close frame. code 0 = no payload (reason must then be empty); otherwise code
 * must satisfy ps_ws_close_code_valid and the reason (reason_len <= 123, may be NULL when
 * 0) must be valid UTF-8. -1 with errno = EINVAL otherwise. */
int ps_ws_append_close(ps_ws_buf *b, ps_ws_role role, int code, const char *reason,
                       size_t reason_len);

/* ---------------------------------------------------------------------------------------
 * Opening handshake (RFC 6455 §4)
 * ------------------------------------------------------------------------------------- */

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)), 28 chars + NUL.
 * (In sha1.c.) */
void ps_ws_accept_key(const char *client_key, char out[29]);
/* A fresh Sec-WebSocket-Key: base64 of 16 getrandom() bytes, 24 chars + NUL. 0 or -1. */
int ps_ws_make_key(char out[25]);

/* Writes the client's upgrade request into out (cap bytes; NUL-terminated when it fits)
 * and returns its length excluding the NUL, snprintf-style: call with cap 0 to size it.
 * host: Host header value (add ":port" for a non-default port); path: request target,
 * starting with '/', query included; both printable ASCII without spaces. extra: NULL or
 * additional header lines, each "Name: value\r\n". key: from ps_ws_make_key.
 * Returns 0 (writing nothing) when an argument is malformed (header injection guard). */
size_t ps_ws_client_request(char *out, size_t cap, const char *host, const char *path,
                            const char *extra, const char *key);

/* Checks the server's response to our upgrade request: status 101, "Upgrade: websocket",
 * "Connection" listing "upgrade" (tokens, case-insensitive), Sec-WebSocket-Accept matching
 * key, and no Sec-WebSocket-Extensions/-Protocol (we ask for none).
 * Returns  1: valid; *header_len = bytes of resp that were the HTTP header (through the
 *             blank line); bytes after that are already frame data.
 *          0: incomplete, the blank line has not arrived yet: call again with more bytes.
 *         -1: refused; *err = static message; *status = HTTP status when the status line
 *             parsed (else 0). A header over 16 KiB without its end is refused too.
 * header_len, status and err may be NULL. */
int ps_ws_check_response(const char *resp, size_t n, const char *key, size_t *header_len,
                         int *status, const char **err);

#endif
