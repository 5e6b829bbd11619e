/* Lua line coverage for `make coverage` (spec/coverage.lua loads it with package.loadlib;
 * it is not part of the polysim.core table). A C line hook costs a strcmp per line, where a
 * Lua hook costs a call and a debug.getinfo table: the whole suite runs under it. New threads
 * inherit a thread's C hook (lua_newthread copies it), so coroutines are counted without
 * help; spec/coverage.lua chains it with the Lua hooks others set (the time budget).
 * Counts are per process (a test tool: one state per lua5.4 process). */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

typedef struct { char *name; unsigned *n; int cap; } cov_file;   /* name: "lua/polysim/x.lua" */
typedef struct { char *src; int file; } cov_seen;                /* chunk name -> file, -1 */

static cov_file *files;
static int nfiles, capfiles;
static cov_seen *seen;
static size_t seen_cap, seen_n;
static const cov_seen *last;

static size_t hash(const char *s) {
    size_t h = 1469598103934665603u;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211u;
    return h;
}

static int grow_seen(void) {
    size_t cap = seen_cap ? seen_cap * 2 : 256;
    cov_seen *t = calloc(cap, sizeof *t);
    if (!t) return 0;
    for (size_t i = 0; i < seen_cap; i++) {
        if (!seen[i].src) continue;
        size_t j = hash(seen[i].src) & (cap - 1);
        while (t[j].src) j = (j + 1) & (cap - 1);
        t[j] = seen[i];
    }
    free(seen);
    seen = t, seen_cap = cap, last = NULL;
    return 1;
}

static int file_of(const char *src) {
    const char *p = strstr(src, "lua/polysim/");
    size_t n = strlen(src);
    if (!p || n < 4 || strcmp(src + n - 4, ".lua") != 0) return -1;
    for (int i = 0; i < nfiles; i++) if (strcmp(files[i].name, p) == 0) return i;
    if (nfiles == capfiles) {
        int cap = capfiles ? capfiles * 2 : 64;
        cov_file *t = realloc(files, (size_t)cap * sizeof *t);
        if (!t) return -1;
        files = t, capfiles = cap;
    }
    char *name = strdup(p);
    if (!name) return -1;
    files[nfiles] = (cov_file){ name, NULL, 0 };
    return nfiles++;
}

static const cov_seen *lookup(const char *src) {
    if (last && strcmp(last->src, src) == 0) return last;
    if (2 * (seen_n + 1) > seen_cap && !grow_seen()) return NULL;
    size_t j = hash(src) & (seen_cap - 1);
    while (seen[j].src) {
        if (strcmp(seen[j].src, src) == 0) return last = &seen[j];
        j = (j + 1) & (seen_cap - 1);
    }
    char *copy = strdup(src);
    if (!copy) return NULL;
    seen[j] = (cov_seen){ copy, file_of(src) };
    seen_n++;
    return last = &seen[j];
}

static void count(const char *src, int line) {
    if (!src || src[0] != '@' || line <= 0) return;    /* only chunks loaded from files */
    const cov_seen *s = lookup(src);
    if (!s || s->file < 0) return;
    cov_file *f = &files[s->file];
    if (line >= f->cap) {
        int cap = f->cap ? f->cap : 256;
        while (cap <= line) cap *= 2;
        unsigned *t = realloc(f->n, (size_t)cap * sizeof *t);
        if (!t) return;
        memset(t + f->cap, 0, (size_t)(cap - f->cap) * sizeof *t);
        f->n = t, f->cap = cap;
    }
    f->n[line]++;
}

static void hook(lua_State *L, lua_Debug *ar) {
    if (ar->event != LUA_HOOKLINE || !lua_getinfo(L, "S", ar)) return;
    count(ar->source, ar->currentline);
}

static lua_State *thread_arg(lua_State *L) {
    return lua_isthread(L, 1) ? lua_tothread(L, 1) : L;
}

/* attach([co]): the C line hook on co (default: the running thread). */
static int cov_attach(lua_State *L) {
    lua_sethook(thread_arg(L), hook, LUA_MASKLINE, 0);
    return 0;
}

/* detach([co]): no hook on co, if the hook there is ours. */
static int cov_detach(lua_State *L) {
    lua_State *co = thread_arg(L);
    if (lua_gethook(co) == hook) lua_sethook(co, NULL, 0, 0);
    return 0;
}

/* here(line): count a line of the function that called the Lua hook that calls here. */
static int cov_here(lua_State *L) {
    lua_Debug ar;
    int line = (int)luaL_checkinteger(L, 1);
    if (lua_getstack(L, 2, &ar) && lua_getinfo(L, "S", &ar)) count(ar.source, line);
    return 0;
}

/* dump() -> { ["lua/polysim/x.lua"] = { [line] = n, ... }, ... } */
static int cov_dump(lua_State *L) {
    lua_newtable(L);
    for (int i = 0; i < nfiles; i++) {
        lua_newtable(L);
        for (int l = 0; l < files[i].cap; l++) {
            if (!files[i].n[l]) continue;
            lua_pushinteger(L, (lua_Integer)files[i].n[l]);
            lua_rawseti(L, -2, l);
        }
        lua_setfield(L, -2, files[i].name);
    }
    return 1;
}

PS_EXPORT int ps_coverage_open(lua_State *L);
PS_EXPORT int ps_coverage_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        { "attach", cov_attach }, { "detach", cov_detach }, { "here", cov_here },
        { "dump", cov_dump }, { NULL, NULL } };
    luaL_newlib(L, fns);
    return 1;
}
