/* jsonl.c: the backtest's recording reader. A JSON Lines file read in large blocks and decoded
 * line by line straight from the block (no Lua string per line), price records without their
 * record table (ps_json_push_record; the reader's uservalue is its string cache). perf, issue 12: the replay of a 200k-event recording
 * spent ~0.8 us a line in f:lines("L") and ~2.2 us decoding it.
 *
 *   local r = core.jsonl_open(path)          -> reader | nil, message
 *   r:next() -> "price", n, t, msg           a price record (line n)
 *            -> "record", n, value           any other line
 *            -> false, n, message, complete  not JSON (complete: the line ended in "\n")
 *            -> nil                          the end of the file
 *   r:bytes()  bytes consumed so far (lines returned, blank ones included)
 *   r:close()  idempotent; also __gc and __close
 * Lines that are exactly "\n" or "\r\n" are skipped (they still count in n). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define JSONL_MT "polysim.JsonlReader"
#define BLOCK (256u * 1024)

typedef struct {
    FILE *f;
    char *buf;          /* lua_getallocf memory, freed by close */
    size_t cap, start, end;
    lua_Integer line;
    lua_Integer consumed;
    int eof;
    int hints[PS_JSON_HINTS];   /* ps_json_push_record's object sizes, line to line */
} Reader;

static Reader *check_reader(lua_State *L) {
    Reader *r = luaL_checkudata(L, 1, JSONL_MT);
    luaL_argcheck(L, r->f != NULL, 1, "reader is closed");
    return r;
}

static void release(lua_State *L, Reader *r) {
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    if (r->buf) alloc(ud, r->buf, r->cap, 0);
    r->buf = NULL;
    r->cap = r->start = r->end = 0;
    if (r->f) fclose(r->f);
    r->f = NULL;
}

static int l_close(lua_State *L) {
    Reader *r = luaL_checkudata(L, 1, JSONL_MT);
    release(L, r);
    return 0;
}

/* Makes room for more bytes after r->end: moves the unread part to the front, doubling the
 * buffer when one line fills it. Raises on memory exhaustion (the userdata owns the block). */
static void make_room(lua_State *L, Reader *r) {
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end < r->cap) return;
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    size_t ncap = r->cap * 2;
    char *nb = alloc(ud, r->buf, r->cap, ncap);
    if (!nb) luaL_error(L, "jsonl: out of memory for a %zu-byte line", r->cap);
    r->buf = nb;
    r->cap = ncap;
}

/* The next line [*s, *s + *n) (its "\n" included when it has one), or 0 at the end. */
static int next_line(lua_State *L, Reader *r, const char **s, size_t *n) {
    size_t scan = r->start;
    for (;;) {
        char *nl = memchr(r->buf + scan, '\n', r->end - scan);
        if (nl) {
            *s = r->buf + r->start;
            *n = (size_t)(nl + 1 - *s);
            r->start += *n;
            return 1;
        }
        if (r->eof) {
            if (r->start == r->end) return 0;
            *s = r->buf + r->start;                 /* a last line without its newline */
            *n = r->end - r->start;
            r->start = r->end;
            return 1;
        }
        size_t seen = r->end - r->start;
        make_room(L, r);
        scan = seen;
        size_t got = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
        r->end += got;
        if (got == 0) {
            if (ferror(r->f)) return luaL_error(L, "jsonl: read error: %s", strerror(errno));
            r->eof = 1;
        }
    }
}

static int l_next(lua_State *L) {
    Reader *r = check_reader(L);
    const char *s = NULL;
    size_t n = 0;
    for (;;) {
        if (!next_line(L, r, &s, &n)) return 0;
        r->line++;
        r->consumed += (lua_Integer)n;
        if (!(n == 1 || (n == 2 && s[0] == '\r' && s[1] == '\n'))) break;
    }
    char err[160];
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, 1);                             /* r cache */
    int k = ps_json_push_record(L, s, n, 2, r->hints, err, sizeof err); /* r cache t msg | r cache value | r cache */
    lua_remove(L, 2);                                       /* r t msg | r value | r */
    if (k == 2) {
        lua_pushliteral(L, "price");
        lua_pushinteger(L, r->line);
        lua_rotate(L, 2, 2);                                /* r "price" n t msg */
        return 4;
    }
    if (k == 1) {
        lua_pushliteral(L, "record");
        lua_pushinteger(L, r->line);
        lua_rotate(L, 2, 2);                                /* r "record" n value */
        return 3;
    }
    lua_pushboolean(L, 0);
    lua_pushinteger(L, r->line);
    lua_pushstring(L, err);
    lua_pushboolean(L, s[n - 1] == '\n');                   /* r false n message complete */
    return 4;
}

static int l_bytes(lua_State *L) {
    Reader *r = luaL_checkudata(L, 1, JSONL_MT);
    lua_pushinteger(L, r->consumed);
    return 1;
}

static int l_tostring(lua_State *L) {
    Reader *r = luaL_checkudata(L, 1, JSONL_MT);
    lua_pushfstring(L, JSONL_MT " (%s, line %I)", r->f ? "open" : "closed", r->line);
    return 1;
}

/* core.jsonl_open(path) -> reader | nil, message */
static int l_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    Reader *r = lua_newuserdatauv(L, sizeof *r, 1);         /* path r */
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, JSONL_MT);
    lua_createtable(L, 256, 0);                             /* path r cache (json.c's STR_SLOTS) */
    lua_setiuservalue(L, -2, 1);                            /* path r */
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    r->buf = alloc(ud, NULL, 0, BLOCK);
    if (!r->buf) return luaL_error(L, "jsonl: out of memory");
    r->cap = BLOCK;
    r->f = fopen(path, "rb");
    if (!r->f) {
        int e = errno;
        release(L, r);
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        return 2;
    }
    return 1;
}

void ps_jsonl_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"next", l_next}, {"bytes", l_bytes}, {"close", l_close}, {NULL, NULL},
    };
    ps_newclass(L, JSONL_MT, methods, l_close, l_close, l_tostring);
    lua_pushcfunction(L, l_open);
    lua_setfield(L, -2, "jsonl_open");                      /* core */
}
