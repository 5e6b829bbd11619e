/* The curl easy defaults shared by every handle of ours (http.c's transfers and wsconn.c's
 * WebSocket connections): TLS options are set here once. */
#include "loop.h"

void ps_easy_defaults(CURL *e, ps_curl_owner *owner, char *errbuf, const char *cainfo,
                      double connect_timeout) {
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)owner);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cainfo) curl_easy_setopt(e, CURLOPT_CAINFO, cainfo);
    /* 0 is curl's "default", so a tiny positive timeout stays at least 1 ms. */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     connect_timeout > 0 ? ps_secs_to_ms(connect_timeout) + 1 : 0L);
}
