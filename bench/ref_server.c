/* The reference server of `make bench`: one thread, epoll, HTTP/1.1 keep-alive, answering
 * every request with the same canned bytes (a market's JSON, from FILE) as fast as a server
 * can, so the bench measures the client, not the server. Prints its port, then serves until
 * killed. Requests are recognised by their blank line (no bodies expected).
 * Usage: ref_server FILE */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct { int fd; int state; } conn;   /* state: how much of "\r\n\r\n" was seen */

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s FILE\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    static char body[1 << 16];
    size_t blen = fread(body, 1, sizeof body, f);
    fclose(f);
    static char resp[(1 << 16) + 256];
    int hl = snprintf(resp, 256, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n", blen);
    memcpy(resp + hl, body, blen);
    size_t rlen = (size_t)hl + blen;

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) { perror("listen"); return 1; }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[256];
    static char buf[1 << 16];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                close(c->fd);
                free(c);
                continue;
            }
            int answers = 0;
            static const char end[] = "\r\n\r\n";
            for (ssize_t k = 0; k < r; k++) {
                if (buf[k] == end[c->state]) c->state++;
                else c->state = buf[k] == '\r' ? 1 : 0;
                if (c->state == 4) { answers++; c->state = 0; }
            }
            for (int k = 0; k < answers; k++)   /* small answers: the socket buffer takes them */
                if (write(c->fd, resp, rlen) < 0) break;
        }
    }
}
