/* A 60 fps main loop that runs a polysim strategy on the side: the shape of a game or a
 * trading terminal embedding polysim through include/polysim.h.
 *
 *   make embed                          (builds build/bin/embed and runs it for 5 s)
 *   build/bin/embed [STRATEGY.lua] [SECONDS]
 *
 * Each frame does some "game" work, then gives polysim whatever is ready with
 * polysim_host_step(h, 0), then sleeps in poll() on polysim_host_fd() until the frame is
 * due, stepping again whenever polysim has work. The strategy runs against a local exchange
 * in this process, with its requests in flight across frames, and a deliberately slow
 * callback (40 ms of computation once a second, inside its 0.5 s budget) that the host
 * suspends at each step's deadline and resumes at the next. At the end the program prints
 * its worst single step and its worst frame (wall time, idle included); it exits 1 when a
 * step took half a frame or a frame ran 1.5 frames long. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "polysim.h"

#define FRAME_S (1.0 / 60.0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Stand-in for a game's update and render: ~1 ms of arithmetic. */
static double game_frame(double x) {
    double t0 = now_s();
    while (now_s() - t0 < 0.001)
        for (int i = 0; i < 1000; i++) x = x * 1.0000001 + 1e-9;
    return x;
}

static void log_line(void *ud, int level, const char *line) {
    (void)ud;
    (void)level;
    fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv) {
    const char *strategy = argc > 1 ? argv[1] : "examples/embed/strategy.lua";
    double seconds = argc > 2 ? atof(argv[2]) : 5.0;

    polysim_host_options o = {0};
    o.local_exchange = 1;      /* no key, no network: an exchange in this process */
    o.budget_s = 0.5;          /* a callback may compute 0.5 s without yielding; the host still
                                  suspends it at each step's deadline, so frames stay short */
    o.log = log_line;
    polysim_host *h = polysim_host_new(&o);
    if (!h || polysim_host_error(h)) {
        fprintf(stderr, "embed: %s\n", h ? polysim_host_error(h) : "out of memory");
        polysim_host_destroy(h);
        return 1;
    }
    if (polysim_host_load(h, strategy) != 0) {
        fprintf(stderr, "embed: %s\n", polysim_host_error(h));
        polysim_host_destroy(h);
        return 1;
    }
    fprintf(stderr, "embed: running %s against %s at 60 fps for %g s\n", strategy,
            polysim_host_base_url(h), seconds);

    double start = now_s(), next = start, worst = 0, worst_polysim = 0, total_polysim = 0, x = 1;
    double worst_step = 0, step_t;
    long frames = 0, late = 0, steps = 0;
    while (now_s() - start < seconds) {
        double frame_start = now_s();
        x = game_frame(x);
        double work = now_s() - frame_start;
        double in_polysim = 0;
        double t = now_s();
        int rc = polysim_host_step(h, 0);
        step_t = now_s() - t;
        in_polysim += step_t;
        if (step_t > worst_step) worst_step = step_t;
        steps++;
        if (rc < 0) fprintf(stderr, "embed: step: %s\n", polysim_host_error(h));
        if (rc == 1) break;                            /* the strategy stopped itself */
        /* Idle until the next frame, but let polysim work as soon as it has something. */
        next += FRAME_S;
        for (;;) {
            double left = next - now_s();
            if (left <= 0) break;
            int wait = (int)(left * 1000.0);
            int tmo = polysim_host_timeout_ms(h);
            if (tmo >= 0 && tmo < wait) wait = tmo;
            struct pollfd p = {.fd = polysim_host_fd(h), .events = POLLIN};
            int n = poll(&p, 1, wait);
            if (n > 0 || tmo == wait) {
                t = now_s();
                polysim_host_step(h, 0);
                step_t = now_s() - t;
                in_polysim += step_t;
                if (step_t > worst_step) worst_step = step_t;
                steps++;
            }
        }
        double frame = now_s() - frame_start;          /* the frame's wall time, idle included */
        work += in_polysim;
        if (frame > worst) worst = frame;
        if (in_polysim > worst_polysim) worst_polysim = in_polysim;
        total_polysim += in_polysim;
        if (frame > FRAME_S * 1.5) late++;
        frames++;
        if (next < now_s() - FRAME_S) next = now_s();  /* fell behind: do not try to catch up */
    }
    polysim_host_stop(h, "quit", 2000);
    polysim_host_destroy(h);

    printf("frames %ld, polysim steps %ld, late frames %ld\n", frames, steps, late);
    printf("time in polysim per frame: worst %.2f ms, mean %.3f ms\n", worst_polysim * 1e3,
           frames ? total_polysim / (double)frames * 1e3 : 0.0);
    /* Suspended callbacks use the frame's idle time (steps of 0 ms while one is pending), so
     * the time in polysim may fill a frame; what must stay short is every single step. */
    printf("worst single polysim_host_step(h, 0): %.2f ms\n", worst_step * 1e3);
    int ok = worst_step < FRAME_S / 2 && worst < FRAME_S * 1.5;
    printf("worst frame time %.2f ms (game ~1 ms + polysim + idle), frame %.1f ms: %s\n",
           worst * 1e3, FRAME_S * 1e3, ok ? "OK" : "OVER BUDGET");
    return ok ? 0 : 1;
}
