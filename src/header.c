/* Header-line checks shared by http.c and ws.c (see header.h). */
#include <string.h>

#include "header.h"

int ps_header_tchar(int ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

int ps_header_name_ok(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!ps_header_tchar((unsigned char)s[i])) return 0;
    return 1;
}

int ps_header_value_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F) return 0;
    }
    return 1;
}
