/* A seeded HTTP/1.1 fault proxy on 127.0.0.1, for the failure specs and `make soak` (issue 10
 * item 3). It shares no code with polysim: plain sockets, one thread per client connection,
 * one upstream connection per client connection.
 *
 *   fault_proxy UPSTREAM_PORT SEED RATE [DELAY_MS]
 *
 * prints "PORT <n>" on stdout once it listens, then nothing more. Request number k (counted
 * over the whole proxy) draws from splitmix64(SEED + k): with probability RATE it gets a
 * fault, one of
 *   drop_after   (40 %) forwarded, the whole answer read, then the client connection is closed
 *                unanswered: the request took effect and the caller cannot know
 *   drop_before  (20 %) the client connection is closed without forwarding anything
 *   reset        (20 %) forwarded, half the answer written, then the connection is reset (RST)
 *   delay        (20 %) forwarded, the answer held DELAY_MS (default 50) before it goes out
 * Every fault but delay makes the request fail at the caller. A forwarded request has always
 * been answered upstream before the caller sees its failure, so an order that was forwarded
 * is on the exchange's books when the caller starts asking about it.
 * Requests to /__proxy/ are answered by the proxy itself, never forwarded or faulted:
 *   GET /__proxy/stats      {"requests":N,"forwarded":N,"drop_after":N,"drop_before":N,
 *                            "reset":N,"delay":N}  (requests: those subject to faults)
 *   PUT /__proxy/rate/R     sets the fault rate to R (0 .. 1)
 * The proxy ends with its parent process (PR_SET_PDEATHSIG) or on SIGTERM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int upstream_port;
static uint64_t seed;
static double rate;
static int delay_ms = 50;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t counter;
static unsigned long st_requests, st_forwarded, st_drop_after, st_drop_before, st_reset, st_delay;

enum fault { F_NONE, F_DROP_AFTER, F_DROP_BEFORE, F_RESET, F_DELAY };

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static enum fault draw(void) {
    pthread_mutex_lock(&mu);
    uint64_t r = splitmix64(seed + counter++);
    double u = (double)(r >> 11) / 9007199254740992.0; /* [0, 1) */
    double v = (double)((r >> 3) & 0xff) / 256.0;      /* which fault */
    enum fault f = F_NONE;
    st_requests++;
    if (u < rate) f = v < 0.4 ? F_DROP_AFTER : v < 0.6 ? F_DROP_BEFORE : v < 0.8 ? F_RESET : F_DELAY;
    switch (f) {
    case F_DROP_AFTER: st_drop_after++; break;
    case F_DROP_BEFORE: st_drop_before++; break;
    case F_RESET: st_reset++; break;
    case F_DELAY: st_delay++; break;
    default: break;
    }
    if (f != F_DROP_BEFORE) st_forwarded++;
    pthread_mutex_unlock(&mu);
    return f;
}

/* A growable byte buffer. */
typedef struct {
    char *p;
    size_t len, cap;
} buf;

static int buf_reserve(buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_add(buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static void buf_consume(buf *b, size_t n) {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = 0;
}

/* Reads more bytes from fd into b: > 0 bytes read, 0 at EOF, -1 on error. */
static ssize_t fill(int fd, buf *b) {
    if (buf_reserve(b, 16384)) return -1;
    ssize_t n;
    do n = recv(fd, b->p + b->len, b->cap - b->len - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        b->len += (size_t)n;
        b->p[b->len] = 0;
    }
    return n;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The offset just past "\r\n\r\n" in b, reading more from fd as needed; 0 on EOF/error. */
static size_t read_head(int fd, buf *b) {
    for (;;) {
        char *e = b->len ? strstr(b->p, "\r\n\r\n") : NULL;
        if (e) return (size_t)(e - b->p) + 4;
        if (b->len > (1u << 20)) return 0;
        if (fill(fd, b) <= 0) return 0;
    }
}

/* The value of header `name` in the head [p, p + n), or NULL; *vlen gets its length. */
static const char *header(const char *p, size_t n, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    const char *end = p + n, *line = memchr(p, '\n', n);
    while (line && line + 1 < end) {
        line++;
        if ((size_t)(end - line) > nl + 1 && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            const char *ve = memchr(v, '\r', (size_t)(end - v));
            *vlen = ve ? (size_t)(ve - v) : 0;
            return v;
        }
        line = memchr(line, '\n', (size_t)(end - line));
    }
    return NULL;
}

static int has_token(const char *v, size_t n, const char *tok) {
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++)
        if (strncasecmp(v + i, tok, tl) == 0) return 1;
    return 0;
}

static long content_length(const char *p, size_t n) {
    size_t vl;
    const char *v = header(p, n, "Content-Length", &vl);
    if (!v) return -1;
    return strtol(v, NULL, 10);
}

/* Makes sure b holds `need` bytes, reading from fd. 0 ok, -1 EOF/error. */
static int need_bytes(int fd, buf *b, size_t need) {
    while (b->len < need)
        if (fill(fd, b) <= 0) return -1;
    return 0;
}

/* Reads one whole answer from the upstream into *out (removing it from *in). Returns 0, or -1
 * when the upstream failed. *close_after is set when the upstream connection cannot be kept. */
static int read_answer(int fd, buf *in, buf *out, int head_request, int *close_after) {
    size_t h = read_head(fd, in);
    if (!h) return -1;
    int status = 0;
    if (sscanf(in->p, "HTTP/%*d.%*d %d", &status) != 1) return -1;
    size_t vl;
    const char *conn = header(in->p, h, "Connection", &vl);
    *close_after = conn && has_token(conn, vl, "close");
    const char *te = header(in->p, h, "Transfer-Encoding", &vl);
    int chunked = te && has_token(te, vl, "chunked");
    long cl = content_length(in->p, h);
    size_t total;
    if (head_request || status == 204 || status == 304 || (status >= 100 && status < 200)) {
        total = h;
    } else if (chunked) {
        size_t pos = h;
        for (;;) {
            char *e;
            while (!(e = strstr(in->p + pos, "\r\n")))
                if (fill(fd, in) <= 0) return -1;
            unsigned long sz = strtoul(in->p + pos, NULL, 16);
            pos = (size_t)(e - in->p) + 2;
            if (sz == 0) { /* trailers end with an empty line */
                for (;;) {
                    while (!(e = strstr(in->p + pos, "\r\n")))
                        if (fill(fd, in) <= 0) return -1;
                    int empty = e == in->p + pos;
                    pos = (size_t)(e - in->p) + 2;
                    if (empty) break;
                }
                break;
            }
            if (need_bytes(fd, in, pos + sz + 2)) return -1;
            pos += sz + 2;
        }
        total = pos;
    } else if (cl >= 0) {
        total = h + (size_t)cl;
        if (need_bytes(fd, in, total)) return -1;
    } else { /* until the upstream closes */
        while (fill(fd, in) > 0) {}
        total = in->len;
        *close_after = 1;
    }
    if (buf_add(out, in->p, total)) return -1;
    buf_consume(in, total);
    return 0;
}

static int connect_upstream(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)upstream_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void reset_close(int fd) {
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static void answer_local(int fd, const char *status, const char *body) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", status,
                     strlen(body));
    if (send_all(fd, head, (size_t)n) == 0) send_all(fd, body, strlen(body));
}

static void control(int fd, const char *method, const char *path) {
    char body[512];
    if (strcmp(method, "GET") == 0 && strcmp(path, "/__proxy/stats") == 0) {
        pthread_mutex_lock(&mu);
        snprintf(body, sizeof body,
                 "{\"requests\":%lu,\"forwarded\":%lu,\"drop_after\":%lu,\"drop_before\":%lu,"
                 "\"reset\":%lu,\"delay\":%lu,\"rate\":%g}",
                 st_requests, st_forwarded, st_drop_after, st_drop_before, st_reset, st_delay, rate);
        pthread_mutex_unlock(&mu);
        answer_local(fd, "200 OK", body);
    } else if (strcmp(method, "PUT") == 0 && strncmp(path, "/__proxy/rate/", 14) == 0) {
        double r = strtod(path + 14, NULL);
        pthread_mutex_lock(&mu);
        rate = r < 0 ? 0 : r > 1 ? 1 : r;
        pthread_mutex_unlock(&mu);
        answer_local(fd, "200 OK", "{\"ok\":true}");
    } else {
        answer_local(fd, "404 Not Found", "{\"error\":\"unknown proxy control\"}");
    }
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

static void *serve_conn(void *arg) {
    int cfd = (int)(intptr_t)arg, ufd = -1;
    buf in = {0}, up = {0}, req = {0}, ans = {0};
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (;;) {
        size_t h = read_head(cfd, &in);
        if (!h) break;
        char method[16] = "", path[1024] = "";
        if (sscanf(in.p, "%15s %1023s", method, path) != 2) break;
        long cl = content_length(in.p, h);
        if (cl < 0) cl = 0;
        size_t vl;
        const char *ex = header(in.p, h, "Expect", &vl);
        int expect = ex && has_token(ex, vl, "100-continue");
        /* the request head, without any Expect line (the proxy says 100 Continue itself) */
        req.len = 0;
        const char *p = in.p, *end = in.p + h;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t ll = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            if (!(ll > 7 && strncasecmp(p, "Expect:", 7) == 0)) buf_add(&req, p, ll);
            p += ll;
        }
        buf_consume(&in, h);
        if (expect && send_all(cfd, "HTTP/1.1 100 Continue\r\n\r\n", 25)) break;
        if (need_bytes(cfd, &in, (size_t)cl)) break;
        buf_add(&req, in.p, (size_t)cl);
        buf_consume(&in, (size_t)cl);
        if (strncmp(path, "/__proxy/", 9) == 0) {
            control(cfd, method, path);
            continue;
        }
        enum fault f = draw();
        if (f == F_DROP_BEFORE) break;
        if (ufd < 0 && (ufd = connect_upstream()) < 0) break;
        int close_after = 0;
        ans.len = 0;
        if (send_all(ufd, req.p, req.len) || read_answer(ufd, &up, &ans, strcmp(method, "HEAD") == 0, &close_after)) {
            /* the upstream failed: so does this request, the way a dead server looks */
            break;
        }
        if (close_after) {
            close(ufd);
            ufd = -1;
            up.len = 0;
        }
        if (f == F_DROP_AFTER) break;
        if (f == F_RESET) {
            send_all(cfd, ans.p, ans.len / 2);
            reset_close(cfd);
            cfd = -1;
            break;
        }
        if (f == F_DELAY) sleep_ms(delay_ms);
        if (send_all(cfd, ans.p, ans.len)) break;
    }
    if (cfd >= 0) close(cfd);
    if (ufd >= 0) close(ufd);
    free(in.p);
    free(up.p);
    free(req.p);
    free(ans.p);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: fault_proxy UPSTREAM_PORT SEED RATE [DELAY_MS]\n");
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    upstream_port = atoi(argv[1]);
    seed = strtoull(argv[2], NULL, 10);
    rate = strtod(argv[3], NULL);
    if (argc > 4) delay_ms = atoi(argv[4]);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) return 1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1024) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
        perror("fault_proxy");
        return 1;
    }
    printf("PORT %d\n", ntohs(a.sin_port));
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
            return 1;
        }
        pthread_t t;
        if (pthread_create(&t, &attr, serve_conn, (void *)(intptr_t)cfd) != 0) close(cfd);
    }
}
