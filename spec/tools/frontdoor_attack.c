/* Front-door attacker for spec/front_door_spec.lua (issue 10 #5). Opens N connections to
 * 127.0.0.1:PORT from 127.0.0.1, each holding a partial request; in "slow" mode it keeps
 * sending one header line per connection every 200 ms (slowloris) for SECONDS. Then it
 * counts the connections the server has closed and asks GET /v1/health from another
 * client address (127.0.0.2). Prints: "opened O closed C health S".
 * "wsping": one WebSocket to /ws that floods pings (up to N MiB, SECONDS at most) and never
 * reads; prints "sent MIB closed C health S" (C: 1 when the server closed it).
 * Usage: frontdoor_attack PORT hold|slow|wsping N SECONDS */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int dial(int port, const char *from) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    if (from) {
        inet_pton(AF_INET, from, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    }
    a.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    return fd;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* 1 when the server closed fd (EOF or reset), without blocking. */
static int closed_by_peer(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    char b[512];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || (p.revents & (POLLHUP | POLLERR));
}

static int health(int port) {
    int fd = dial(port, "127.0.0.2");
    if (fd < 0) return -1;
    static const char req[] = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) { close(fd); return -2; }
    char b[64] = {0};
    size_t n = 0;
    double end = now() + 5;
    while (n < 12 && now() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = read(fd, b + n, sizeof b - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    int status = 0;
    if (sscanf(b, "HTTP/1.%*d %d", &status) != 1) return 0;
    return status;
}

static int wsping(int port, int mib, double secs) {
    int fd = dial(port, NULL);
    if (fd < 0) return 1;
    static const char hs[] = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    if (write(fd, hs, sizeof hs - 1) != (ssize_t)(sizeof hs - 1)) return 1;
    char b[1024];
    size_t n = 0;
    while (n < sizeof b - 1 && !strstr(b, "\r\n\r\n")) {   /* the 101's headers, nothing more */
        ssize_t r = read(fd, b + n, 1);
        if (r <= 0) return 1;
        n += (size_t)r;
        b[n] = 0;
    }
    if (!strstr(b, " 101 ")) { fprintf(stderr, "no 101: %s\n", b); return 1; }
    unsigned char frame[6 + 125];                       /* masked ping, 125-byte payload */
    frame[0] = 0x89;
    frame[1] = 0x80 | 125;
    memset(frame + 2, 0x5a, sizeof frame - 2);
    size_t sent = 0, limit = (size_t)mib << 20;
    int closed = 0;
    double end = now() + secs;
    while (sent < limit && now() < end) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        if (p.revents & (POLLERR | POLLHUP)) { closed = 1; break; }
        ssize_t r = send(fd, frame, sizeof frame, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (r < 0) { closed = 1; break; }
        sent += (size_t)r;                              /* a partial frame: the rest follows */
        if ((size_t)r < sizeof frame) {
            size_t off = (size_t)r;
            while (off < sizeof frame) {
                ssize_t k = send(fd, frame + off, sizeof frame - off, MSG_NOSIGNAL);
                if (k < 0) { closed = 1; break; }
                off += (size_t)k;
                sent += (size_t)k;
            }
            if (closed) break;
        }
    }
    if (!closed) {                                      /* a close shows as EOF/reset on read */
        struct pollfd p = {fd, POLLIN, 0};
        closed = poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) ? 1 : 0;
    }
    printf("sent %zu closed %d health %d\n", sent >> 20, closed, health(port));
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[2], "wsping") == 0) {
        signal(SIGPIPE, SIG_IGN);
        return wsping(atoi(argv[1]), atoi(argv[3]), atof(argv[4]));
    }
    if (argc != 5) {
        fprintf(stderr, "usage: %s PORT hold|slow N SECONDS\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int port = atoi(argv[1]), slow = strcmp(argv[2], "slow") == 0, n = atoi(argv[3]);
    double secs = atof(argv[4]);
    int *fds = calloc((size_t)n, sizeof *fds);
    int opened = 0;
    static const char part[] = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < n; i++) {
        fds[i] = dial(port, NULL);
        if (fds[i] < 0) continue;
        opened++;
        if (write(fds[i], part, sizeof part - 1) < 0) { close(fds[i]); fds[i] = -1; }
    }
    double end = now() + secs;
    while (now() < end) {
        nanosleep(&(struct timespec){0, 200000000L}, NULL);
        if (!slow) continue;
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0 && write(fds[i], "X-a: b\r\n", 8) < 0) { close(fds[i]); fds[i] = -1; }
    }
    int closed = 0;
    for (int i = 0; i < n; i++)
        if (fds[i] < 0 || closed_by_peer(fds[i])) closed++;
    int st = health(port);
    printf("opened %d closed %d health %d\n", opened, closed, st);
    for (int i = 0; i < n; i++) if (fds[i] >= 0) close(fds[i]);
    free(fds);
    return 0;
}
