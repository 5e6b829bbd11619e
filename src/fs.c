/* The few file-system calls Lua's io library lacks, for the backtest's sweep: the working
 * directory (a --plan command must name absolute paths), a directory's entries (--merge
 * finds the reports under a directory) and mkdir -p without a shell. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "internal.h"

/* core.cwd() -> the working directory | nil, message. */
static int l_cwd(lua_State *L) {
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof buf)) {
        lua_pushnil(L);
        lua_pushfstring(L, "getcwd: %s", strerror(errno));
        return 2;
    }
    lua_pushstring(L, buf);
    return 1;
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* core.listdir(path) -> {name, ...} sorted bytewise, without "." and ".." | nil, message. */
static int l_listdir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    /* collected as Lua strings in a table first (no C allocations to leak on a Lua error) */
    lua_newtable(L);
    lua_Integer n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    /* sort through an array of pointers into those strings (kept alive by the table) */
    const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        names[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    qsort(names, (size_t)n, sizeof(char *), cmp);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushstring(L, names[i - 1]);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* core.isdir(path) -> bool */
static int l_isdir(lua_State *L) {
    struct stat st;
    lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISDIR(st.st_mode));
    return 1;
}

/* core.mkdir_p(path) -> true | nil, message: every missing directory of path (mode 0755). */
static int l_mkdir_p(lua_State *L) {
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, len > 0 && len < PATH_MAX, 1, "path must be 1..PATH_MAX-1 bytes");
    char buf[PATH_MAX];
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        struct stat st;
        if (mkdir(buf, 0755) != 0 && !(errno == EEXIST && stat(buf, &st) == 0 && S_ISDIR(st.st_mode))) {
            lua_pushnil(L);
            lua_pushfstring(L, "mkdir %s: %s", buf, strerror(errno == EEXIST ? ENOTDIR : errno));
            return 2;
        }
        buf[i] = c;
    }
    lua_pushboolean(L, 1);
    return 1;
}

void ps_fs_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"cwd", l_cwd}, {"listdir", l_listdir}, {"isdir", l_isdir}, {"mkdir_p", l_mkdir_p},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);                          /* core */
}
