/* Reference for bench/client.lua: N sequential keep-alive GETs of one URL with plain
 * libcurl (one easy handle, body collected into memory, nothing decoded). Prints the
 * per-call cost in microseconds. Usage: curl_raw URL API_KEY N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

static size_t sink(char *p, size_t s, size_t n, void *ud) {
    (void)p;
    *(size_t *)ud += s * n;
    return s * n;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s URL API_KEY N\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[3]);
    char hdr[256];
    snprintf(hdr, sizeof hdr, "X-API-Key: %s", argv[2]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, hdr);
    size_t bytes = 0;
    curl_easy_setopt(e, CURLOPT_URL, argv[1]);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &bytes);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        CURLcode rc = curl_easy_perform(e);
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200) {
            fprintf(stderr, "curl_raw: call %d failed: %s, status %ld\n", i, curl_easy_strerror(rc), status);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / n;
    printf("%.2f %zu\n", us, bytes / (size_t)n);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    curl_global_cleanup();
    return 0;
}
