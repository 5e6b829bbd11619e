#ifndef POLYSIM_ERRORS_H
#define POLYSIM_ERRORS_H
#include <curl/curl.h>
#include "internal.h"

/* Pushes the error object (status 0) for a failed transfer. */
void ps_error_push_transport(lua_State *L, CURLcode rc, int too_large, const char *detail,
                             size_t max_size);
#endif
