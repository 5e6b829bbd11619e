/* The one check for what goes into an HTTP header line (REST requests in http.c, the
 * WebSocket handshake in ws.c): a header built from a caller's string must never turn into
 * two lines (issue 8 bug 5: "abc\r\nX-Injected: yes"). */
#ifndef POLYSIM_HEADER_H
#define POLYSIM_HEADER_H
#include <stddef.h>

/* 1 when ch is an RFC 9110 token character (header names, methods). */
int ps_header_tchar(int ch);
/* 1 when s[0..n) is a non-empty token. */
int ps_header_name_ok(const char *s, size_t n);
/* 1 when s[0..n) holds no control character other than HT (no CR, LF, NUL, DEL). */
int ps_header_value_ok(const char *s, size_t n);
#endif
