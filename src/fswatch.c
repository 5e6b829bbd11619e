/* File watching on inotify, for hot reload.
 *
 *   local w = core.fswatch()        -- polysim.FsWatch
 *   w:add("examples")               -- watch a directory (or a file); -> true | nil, err, code
 *   loop:watch(w:fd(), "r", function() for _, path in ipairs(w:read()) do ... end end)
 *   w:close()                       -- also on __gc and __close
 *
 * Watch directories, not files: editors save by writing a temporary file and renaming it
 * over the original, which replaces the inode a file watch would follow. A directory watch
 * reports every name written (IN_CLOSE_WRITE), renamed into place (IN_MOVED_TO) or touched
 * (IN_ATTRIB); read() turns those into "dir/name" paths, each at most once per call. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>

#include "internal.h"

#define FSWATCH_MT "polysim.FsWatch"
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

typedef struct {
    int fd;                  /* -1 once closed */
} fswatch;

/* Uservalue 1: wd -> watched path. */

static fswatch *check_fswatch(lua_State *L, int idx) {
    fswatch *w = luaL_checkudata(L, idx, FSWATCH_MT);
    luaL_argcheck(L, w->fd >= 0, idx, "file watch is closed");
    return w;
}

/* core.fswatch() -> watch | nil, err, code */
static int l_fswatch(lua_State *L) {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "inotify_init1: %s", strerror(errno));
        lua_pushliteral(L, "FSWATCH_INIT");
        return 3;
    }
    fswatch *w = lua_newuserdatauv(L, sizeof *w, 1);   /* w */
    w->fd = fd;
    luaL_setmetatable(L, FSWATCH_MT);
    lua_newtable(L);                                   /* w wds */
    lua_setiuservalue(L, -2, 1);                       /* w */
    return 1;
}

/* w:add(path) -> true | nil, err, code. Adding a path twice is harmless. */
static int l_add(lua_State *L) {
    fswatch *w = check_fswatch(L, 1);
    const char *path = luaL_checkstring(L, 2);
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
    if (wd < 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "cannot watch %s: %s", path, strerror(e));
        lua_pushstring(L, e == ENOENT ? "ENOENT" : e == EACCES ? "EACCES" : e == ENOSPC ? "ENOSPC"
                          : "FSWATCH_ADD");
        return 3;
    }
    lua_getiuservalue(L, 1, 1);                        /* w path wds */
    lua_pushvalue(L, 2);                               /* w path wds path */
    lua_rawseti(L, -2, wd);                            /* w path wds */
    lua_pushboolean(L, 1);
    return 1;
}

/* Appends "dir/name" (or the watched path itself) to the list at list_idx unless it is
 * already in the set at seen_idx. */
static void push_change(lua_State *L, int wds_idx, int list_idx, int seen_idx,
                        const struct inotify_event *ev) {
    if (lua_rawgeti(L, wds_idx, ev->wd) != LUA_TSTRING) { /* base */
        lua_pop(L, 1);                                 /* a watch we no longer know */
        return;
    }
    if (ev->len > 0 && ev->name[0] != '\0') {
        size_t blen;
        const char *base = lua_tolstring(L, -1, &blen);
        if (blen > 0 && base[blen - 1] == '/') lua_pushfstring(L, "%s%s", base, ev->name);
        else lua_pushfstring(L, "%s/%s", base, ev->name);
        lua_remove(L, -2);                             /* path */
    }
    lua_pushvalue(L, -1);                              /* path path */
    if (lua_rawget(L, seen_idx) != LUA_TNIL) {         /* path seen? */
        lua_pop(L, 2);
        return;
    }
    lua_pop(L, 1);                                     /* path */
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen_idx);                           /* path */
    lua_rawseti(L, list_idx, (lua_Integer)lua_rawlen(L, list_idx) + 1); /* (empty) */
}

/* w:read() -> { path, ... }, overflowed. Never blocks; an empty list when nothing is
 * pending. overflowed is true when the kernel dropped events (treat everything as changed). */
static int l_read(lua_State *L) {
    fswatch *w = check_fswatch(L, 1);
    int overflow = 0;
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, 1);                        /* w wds */
    lua_newtable(L);                                   /* w wds list */
    lua_newtable(L);                                   /* w wds list seen */
    _Alignas(struct inotify_event) char buf[4096];
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;                             /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                overflow = 1;
                continue;
            }
            if (ev->mask & IN_IGNORED) {               /* the watch is gone: forget its wd */
                lua_pushnil(L);
                lua_rawseti(L, 2, ev->wd);
                continue;
            }
            push_change(L, 2, 3, 4, ev);
        }
    }
    lua_pop(L, 1);                                     /* w wds list */
    lua_pushboolean(L, overflow);                      /* w wds list overflow */
    return 2;
}

/* w:fd() -> the inotify fd (readable when changes are pending) */
static int l_fd(lua_State *L) {
    lua_pushinteger(L, check_fswatch(L, 1)->fd);
    return 1;
}

static int l_close(lua_State *L) {
    fswatch *w = luaL_checkudata(L, 1, FSWATCH_MT);
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    return 0;
}

static int l_tostring(lua_State *L) {
    fswatch *w = luaL_checkudata(L, 1, FSWATCH_MT);
    if (w->fd < 0) lua_pushliteral(L, "polysim.FsWatch (closed)");
    else lua_pushfstring(L, "polysim.FsWatch (fd %d)", w->fd);
    return 1;
}

void ps_fswatch_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"add", l_add}, {"read", l_read}, {"fd", l_fd}, {"close", l_close}, {NULL, NULL},
    };
    ps_newclass(L, FSWATCH_MT, methods, l_close, l_close, l_tostring);
    lua_pushcfunction(L, l_fswatch);
    lua_setfield(L, -2, "fswatch");                    /* core */
}
