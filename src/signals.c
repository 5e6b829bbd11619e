/* The SIGINT/SIGTERM watchdog (issue 10 item 1): a stuck strategy cannot keep the host from
 * stopping. The host takes its signals from a signalfd (core.signal_fd) that its loop reads;
 * a strategy stuck in a loop keeps the loop from reading it. A thread of ours watches the
 * same signals without taking them (poll on signalfds of its own: readable = pending):
 *
 *  - a signal still pending STUCK_MS after it arrived means the loop is stuck: the "stuck"
 *    flag is raised, and the hook polysim.budget puts on every strategy coroutine (budget or
 *    not, while the watchdog runs) makes the strategy code that runs next raise "stopped by
 *    SIGTERM" (polysim.budget decides where, by its own rule: only in strategy code). The flag
 *    drops as soon as the loop has taken the signal: the host then stops as usual (on_stop,
 *    own orders cancelled), every callback from then on under a short budget
 *    (budget.STOP_BUDGET, whatever --budget says), not interrupted by the flag.
 *  - grace_ms after the first signal (or at a second one), a process still running is
 *    ended: one line on stderr, then _exit(128 + signal). That is the backstop where no hook
 *    can reach: a __gc finalizer (Lua runs them with hooks off) or a C function looping.
 *
 * The thread never touches the Lua state: it only sets atomics, and the hooks read them. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "internal.h"

#define STUCK_MS 500     /* a signal the loop has not taken by then: the loop is stuck */
#define POLL_MS 20       /* how often a pending signal is looked at again */

static const struct { const char *name; int sig; } watched[] = {{"INT", SIGINT}, {"TERM", SIGTERM}};
#define NWATCHED (sizeof watched / sizeof watched[0])

static int fds[NWATCHED] = {-1, -1};
static atomic_int started;       /* the thread runs */
static atomic_int first;         /* index + 1 of the first signal seen (by the thread or the host) */
static atomic_int stuck;         /* index + 1: pending and untaken past STUCK_MS */
static atomic_int grace_ms = 10000; /* > the runtime's 5 s wait for callbacks in flight + on_stop */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int pending(int i) {
    struct pollfd p = {.fd = fds[i], .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static _Noreturn void hard_exit(int i, const char *why) {
    char line[512];
    int n = snprintf(line, sizeof line,
                     "polysim: %s SIG%s; exiting now, the stop unfinished (on_stop and the "
                     "cancelling of own orders may not have run): a strategy may be stuck where no "
                     "hook reaches, in a __gc finalizer or a C function\n",
                     why, watched[i].name);
    if (n > 0) {
        ssize_t w = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
    _exit(128 + watched[i].sig);
}

static void *watch(void *arg) {
    (void)arg;
    struct pollfd p[NWATCHED];
    int i = -1;
    while (i < 0) {
        for (size_t k = 0; k < NWATCHED; k++) p[k] = (struct pollfd){.fd = fds[k], .events = POLLIN};
        int r = poll(p, NWATCHED, 250);
        if (r < 0 && errno != EINTR) return NULL;
        for (size_t k = 0; k < NWATCHED && r > 0 && i < 0; k++)
            if (p[k].revents & POLLIN) i = (int)k;
        if (i < 0 && atomic_load(&first)) i = atomic_load(&first) - 1; /* the host took it first */
    }
    int expected = 0;
    atomic_compare_exchange_strong(&first, &expected, i + 1);
    double t0 = now_ms();
    int taken = 0;
    for (;;) {
        sleep_ms(POLL_MS);
        double t = now_ms() - t0;
        int pend = pending(i);
        if (!pend) {
            taken = 1;
            atomic_store(&stuck, 0);
        } else if (taken) {
            hard_exit(i, "a second signal after");
        } else if (t >= STUCK_MS) {
            atomic_store(&stuck, i + 1);
        }
        if (t >= atomic_load(&grace_ms)) {
            char why[64];
            snprintf(why, sizeof why, "still running %g s after", atomic_load(&grace_ms) / 1e3);
            hard_exit(i, why);
        }
    }
}

/* core.watchdog_start([grace_s]) -> true when the watchdog runs (now or already); false when
 * SIGINT/SIGTERM are not blocked in this thread (nobody reads them from a signalfd: their
 * default action ends the process anyway). */
static int l_start(lua_State *L) {
    if (!lua_isnoneornil(L, 1)) {
        lua_Number g = luaL_checknumber(L, 1);
        luaL_argcheck(L, g > 0 && g < 3600, 1, "grace must be 0..3600 s");
        atomic_store(&grace_ms, (int)(g * 1000));
    }
    if (atomic_load(&started)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    for (size_t k = 0; k < NWATCHED; k++)
        if (!sigismember(&cur, watched[k].sig)) {
            lua_pushboolean(L, 0);
            return 1;
        }
    for (size_t k = 0; k < NWATCHED; k++) {
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, watched[k].sig);
        fds[k] = signalfd(-1, &one, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fds[k] < 0) return luaL_error(L, "signalfd: %s", strerror(errno));
    }
    /* The thread takes no signal at all (they stay the loop's), so block all around create. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int rc = pthread_create(&th, NULL, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) return luaL_error(L, "pthread_create: %s", strerror(rc));
    pthread_detach(th);
    atomic_store(&started, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static int index_of(const char *name) {
    if (strncmp(name, "SIG", 3) == 0) name += 3;
    for (size_t k = 0; k < NWATCHED; k++)
        if (strcmp(watched[k].name, name) == 0) return (int)k;
    return -1;
}

/* core.watchdog_stuck() -> "SIGTERM" | "SIGINT" | nil: a signal arrived that the loop has not
 * taken for STUCK_MS (the code running now is what keeps it from doing so). */
static int l_stuck(lua_State *L) {
    int s = atomic_load(&stuck);
    if (!s) return 0;
    if (!pending(s - 1)) { /* the loop took it meanwhile */
        atomic_store(&stuck, 0);
        return 0;
    }
    lua_pushfstring(L, "SIG%s", watched[s - 1].name);
    return 1;
}

/* core.watchdog_stopping(reason): the host stops because of a signal ("SIGTERM"): starts the
 * grace period when the thread has not seen the signal itself. Returns whether it applies. */
static int l_stopping(lua_State *L) {
    int i = index_of(luaL_checkstring(L, 1));
    if (i < 0 || !atomic_load(&started)) return 0;
    int expected = 0;
    atomic_compare_exchange_strong(&first, &expected, i + 1);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.watchdog_signal() -> "SIGTERM" | "SIGINT" | nil: the first signal seen, if any. */
static int l_signal(lua_State *L) {
    int f = atomic_load(&first);
    if (!f) return 0;
    lua_pushfstring(L, "SIG%s", watched[f - 1].name);
    return 1;
}

void ps_signals_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"watchdog_start", l_start},       {"watchdog_stuck", l_stuck},
        {"watchdog_stopping", l_stopping}, {"watchdog_signal", l_signal},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);                          /* core */
}
