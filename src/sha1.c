#include "internal.h"
void ps_sha1(const void *data, size_t n, unsigned char out[20]) { (void)data;(void)n;(void)out; }
size_t ps_base64(const unsigned char *in, size_t n, char *out) { (void)in;(void)n; out[0]=0; return 0; }
