/* Child processes for `polysim backtest --sweep`: the grid's workers are this executable run
 * again with one combination's arguments. posix_spawn, never a shell (an argument is never
 * re-parsed), and the CPU the children used, from getrusage. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "internal.h"

extern char **environ;

/* Adds "open path as fd" to the file actions when t[field] is a string. */
static int redirect(lua_State *L, int opts, const char *field, int fd, int flags,
                    posix_spawn_file_actions_t *fa) {
    if (opts == 0) return 0;
    lua_getfield(L, opts, field);
    int set = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
        if (posix_spawn_file_actions_addopen(fa, fd, lua_tostring(L, -1), flags, 0644) != 0)
            return -1;
        set = 1;
    } else if (!lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return luaL_error(L, "spawn: %s must be a file path", field);
    }
    lua_pop(L, 1);
    return set;
}

/* core.spawn({exe, arg1, ...}, {stdout = path, stderr = path}) -> pid | nil, message.
 * argv[1] is run as given when it holds a '/', else looked up on PATH. stdin is /dev/null;
 * stdout/stderr are the files named (truncated), else this process's own. */
static int l_spawn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int opts = lua_istable(L, 2) ? 2 : 0;
    if (!opts) luaL_opt(L, luaL_checkstring, 2, NULL); /* nil or a table */
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    luaL_argcheck(L, n >= 1 && n < 4096, 1, "argv must hold 1..4095 strings");
    /* the vector lives in a userdata (a luaL_error below frees it with the stack); its
     * strings stay on the stack, so their pointers stay valid until we return */
    char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    luaL_checkstack(L, (int)n, "spawn: too many arguments");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 1, lua_pushfstring(L, "argv[%d] must be a string", (int)i));
        argv[i - 1] = (char *)lua_tostring(L, -1);
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return luaL_error(L, "spawn: out of memory");
    int bad = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0;
    if (!bad) bad = redirect(L, opts, "stdout", 1, O_WRONLY | O_CREAT | O_TRUNC, &fa) < 0;
    if (!bad) bad = redirect(L, opts, "stderr", 2, O_WRONLY | O_CREAT | O_TRUNC, &fa) < 0;
    if (bad) {
        posix_spawn_file_actions_destroy(&fa);
        return luaL_error(L, "spawn: out of memory");
    }
    /* the child starts with default signal dispositions and an empty mask: the host blocks
     * INT/TERM for its signalfd, and a worker must still die of Ctrl-C */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = strchr(argv[0], '/') ? posix_spawn(&pid, argv[0], &fa, &at, argv, environ)
                                  : posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot run %s: %s", argv[0], strerror(rc));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

/* core.wait(pid [, nohang]) -> code, signal | nil when nohang and still running.
 * code: the exit status, or 128 + the signal number when a signal ended it (signal: its
 * number). Raises when pid is not a child of this process. */
static int l_wait(lua_State *L) {
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0, 1, "pid must be > 0");
    int nohang = lua_toboolean(L, 2);
    int st = 0;
    pid_t r;
    do r = waitpid(pid, &st, nohang ? WNOHANG : 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) return luaL_error(L, "wait %d: %s", (int)pid, strerror(errno));
    if (r == 0) return 0;
    if (WIFEXITED(st)) {
        lua_pushinteger(L, WEXITSTATUS(st));
        return 1;
    }
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    lua_pushinteger(L, 128 + sig);
    lua_pushinteger(L, sig);
    return 2;
}

/* core.kill(pid, "TERM"|"KILL"|"INT") -> true | nil, message: for a sweep cut short. */
static int l_kill(lua_State *L) {
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0, 1, "pid must be > 0");
    static const char *const names[] = {"TERM", "KILL", "INT", NULL};
    static const int sigs[] = {SIGTERM, SIGKILL, SIGINT};
    int sig = sigs[luaL_checkoption(L, 2, "TERM", names)];
    if (kill(pid, sig) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

/* core.rusage("self"|"children") -> {user = s, sys = s, maxrss = KiB}. "children": the
 * children already waited for. */
static int l_rusage(lua_State *L) {
    static const char *const names[] = {"self", "children", NULL};
    int who = luaL_checkoption(L, 1, "self", names) ? RUSAGE_CHILDREN : RUSAGE_SELF;
    struct rusage ru;
    if (getrusage(who, &ru) != 0) return luaL_error(L, "getrusage: %s", strerror(errno));
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, tv(ru.ru_utime));
    lua_setfield(L, -2, "user");
    lua_pushnumber(L, tv(ru.ru_stime));
    lua_setfield(L, -2, "sys");
    lua_pushinteger(L, (lua_Integer)ru.ru_maxrss);
    lua_setfield(L, -2, "maxrss");
    return 1;
}

/* core.exe_path() -> the absolute path of the running executable | nil, message. */
static int l_exe_path(lua_State *L) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "readlink /proc/self/exe: %s", strerror(errno));
        return 2;
    }
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* core.ncpu() -> the number of online processors (at least 1). */
static int l_ncpu(lua_State *L) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? (lua_Integer)n : 1);
    return 1;
}

void ps_proc_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"spawn", l_spawn},   {"wait", l_wait},         {"kill", l_kill},
        {"rusage", l_rusage}, {"exe_path", l_exe_path}, {"ncpu", l_ncpu},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);                          /* core */
}
