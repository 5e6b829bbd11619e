/* Small operating-system services the Lua layer needs: randomness for idempotency keys and
 * jitter, signals as a pollable fd, the process id, the wall clock. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/signalfd.h>

#include "internal.h"

/* core.random_bytes(n) -> string of n bytes from the kernel's CSPRNG. */
static int l_random_bytes(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 4096, 1, "n must be 0..4096");
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, (size_t)n);
    size_t got = 0;
    while (got < (size_t)n) {
        ssize_t r = getrandom(p + got, (size_t)n - got, 0);
        if (r < 0 && errno != EINTR) return luaL_error(L, "getrandom: %s", strerror(errno));
        if (r > 0) got += (size_t)r;
    }
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

static const struct { const char *name; int sig; } signals[] = {
    {"INT", SIGINT}, {"TERM", SIGTERM}, {"HUP", SIGHUP}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
};

/* core.signal_fd{"INT","TERM"} -> fd: those signals are blocked and become readable on fd. */
static int l_signal_fd(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sigset_t set;
    sigemptyset(&set);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        const char *name = luaL_checkstring(L, -1);
        size_t k = 0;
        while (k < sizeof signals / sizeof signals[0] && strcmp(signals[k].name, name) != 0) k++;
        if (k == sizeof signals / sizeof signals[0])
            return luaL_argerror(L, 1, lua_pushfstring(L, "unknown signal '%s'", name));
        sigaddset(&set, signals[k].sig);
        lua_pop(L, 1);
    }
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return luaL_error(L, "sigprocmask: %s", strerror(errno));
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return luaL_error(L, "signalfd: %s", strerror(errno));
    lua_pushinteger(L, fd);
    return 1;
}

/* core.read_signal(fd) -> "INT" | "TERM" | ... | nil when none is pending. */
static int l_read_signal(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) != (ssize_t)sizeof si) return 0;
    for (size_t k = 0; k < sizeof signals / sizeof signals[0]; k++)
        if ((int)si.ssi_signo == signals[k].sig) {
            lua_pushstring(L, signals[k].name);
            return 1;
        }
    lua_pushinteger(L, (lua_Integer)si.ssi_signo);
    return 1;
}

static int l_getpid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static int l_isatty(lua_State *L) {
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* core.realtime() -> Unix seconds with a fraction (CLOCK_REALTIME). The Lua fallback, os.time
 * anchored to the monotonic clock, is off by the fraction of a second it was anchored in, a
 * different fraction in every process: a recording's receive times and the strategy's log
 * disagreed by up to a second, and a backtest started --from the live start ran its timers
 * out of phase with the recorded prices. */
static int l_realtime(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static int l_close_fd(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd > 2, 1, "refusing to close a standard stream");
    close(fd);
    return 0;
}

void ps_sys_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"random_bytes", l_random_bytes}, {"signal_fd", l_signal_fd},
        {"read_signal", l_read_signal},   {"getpid", l_getpid},
        {"isatty", l_isatty},             {"close_fd", l_close_fd},
        {"realtime", l_realtime},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);                          /* core */
}
