/* Reference for bench/client.lua: plain libcurl doing the same GET of one URL, the body
 * counted, nothing decoded.
 *   curl_raw easy URL API_KEY N        N sequential keep-alive GETs on one easy handle
 *   curl_raw opts URL API_KEY N        the same with the options polysim's client sets
 *                                      (compression, User-Agent, timeouts, Accept, no
 *                                      Expect, protocols, keep-alive probes, TLS verify)
 *                                      the way a libcurl user sets them: the second
 *                                      reference, which shows what those options cost curl
 *                                      ($CURL_RAW_WITHOUT=name,...: leave some out)
 *   curl_raw multi URL API_KEY N PAR   N GETs, PAR transfers in flight on one multi handle
 * Prints: wall_us_per_call cpu_us_per_call bytes_per_call calls_per_s
 * (cpu: getrusage of this process, user + system). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <curl/curl.h>

#ifndef POLYSIM_VERSION
#define POLYSIM_VERSION "0.2.0"
#endif

static size_t sink(char *p, size_t s, size_t n, void *ud) {
    (void)p;
    *(size_t *)ud += s * n;
    return s * n;
}

static double wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static CURL *easy(const char *url, struct curl_slist *h, size_t *bytes) {
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, bytes);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    return e;
}

/* $CURL_RAW_WITHOUT: a comma-separated list of the options below to leave out (what one
 * costs curl: bench/callgrind_client.lua options). */
static int without(const char *name) {
    const char *w = getenv("CURL_RAW_WITHOUT");
    size_t n = strlen(name);
    for (const char *p = w; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

/* What src/easy.c and src/http.c ask of curl for a client GET (polysim.new's defaults). */
static void polysim_options(CURL *e) {
    if (!without("protocols")) curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!without("keepalive")) curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!without("verify")) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (!without("timeouts")) {
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5001L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 15001L);
    }
    if (!without("accept_encoding")) curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (!without("http_version"))
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (!without("user_agent")) curl_easy_setopt(e, CURLOPT_USERAGENT, "polysim-lua/" POLYSIM_VERSION);
}

static int check(CURL *e, CURLcode rc, int i) {
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "curl_raw: call %d failed: %s, status %ld\n", i, curl_easy_strerror(rc), status);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int multi = argc == 6 && strcmp(argv[1], "multi") == 0;
    int opts = argc == 5 && strcmp(argv[1], "opts") == 0;
    if (!(argc == 5 && strcmp(argv[1], "easy") == 0) && !multi && !opts) {
        fprintf(stderr, "usage: %s easy|opts URL API_KEY N | multi URL API_KEY N PAR\n", argv[0]);
        return 2;
    }
    const char *url = argv[2];
    int n = atoi(argv[4]);
    char hdr[256];
    snprintf(hdr, sizeof hdr, "X-API-Key: %s", argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct curl_slist *h = NULL;
    if (opts && !without("accept")) h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, hdr);
    if (opts && !without("expect")) h = curl_slist_append(h, "Expect:");
    size_t bytes = 0;
    double w0, c0, w1, c1;
    if (!multi) {
        CURL *e = easy(url, h, &bytes);
        if (opts) polysim_options(e);
        for (int i = 0; i < 50; i++) curl_easy_perform(e);       /* warm up */
        bytes = 0;
        w0 = wall(), c0 = cpu();
        for (int i = 0; i < n; i++)
            if (check(e, curl_easy_perform(e), i)) return 1;
        w1 = wall(), c1 = cpu();
        curl_easy_cleanup(e);
    } else {
        int par = atoi(argv[5]);
        CURLM *m = curl_multi_init();
        curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)par);
        CURL **es = calloc((size_t)par, sizeof *es);
        int started = 0, done = 0, running = 0;
        /* warm up, as the easy loop does: one untimed transfer per handle opens the
         * connections the timed ones reuse */
        for (int i = 0; i < par; i++) {
            es[i] = easy(url, h, &bytes);
            curl_multi_add_handle(m, es[i]);
        }
        do {
            curl_multi_perform(m, &running);
            if (running) curl_multi_poll(m, NULL, 0, 1000, NULL);
        } while (running);
        for (int i = 0; i < par; i++) curl_multi_remove_handle(m, es[i]);
        bytes = 0;
        for (int i = 0; i < par && started < n; i++, started++) curl_multi_add_handle(m, es[i]);
        w0 = wall(), c0 = cpu();
        while (done < n) {
            curl_multi_perform(m, &running);
            CURLMsg *msg;
            int left;
            while ((msg = curl_multi_info_read(m, &left))) {
                if (msg->msg != CURLMSG_DONE) continue;
                CURL *e = msg->easy_handle;
                if (check(e, msg->data.result, done)) return 1;
                done++;
                curl_multi_remove_handle(m, e);
                if (started < n) {
                    started++;
                    curl_multi_add_handle(m, e);
                } else {
                    curl_easy_cleanup(e);
                }
            }
            if (done < n) curl_multi_poll(m, NULL, 0, 1000, NULL);
        }
        w1 = wall(), c1 = cpu();
        free(es);
        curl_multi_cleanup(m);
    }
    printf("%.2f %.2f %zu %.0f\n", (w1 - w0) / n * 1e6, (c1 - c0) / n * 1e6, bytes / (size_t)n,
           n / (w1 - w0));
    curl_slist_free_all(h);
    curl_global_cleanup();
    return 0;
}
