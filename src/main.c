/* The `polysim` command: a Lua 5.4 interpreter with polysim.core linked in, handing its
 * arguments to polysim.cli. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

#include "internal.h"
#include "polysim.h"


static int run(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    polysim_openlibs(L, NULL);                         /* libs, polysim.core, our path */
    lua_createtable(L, argc, 1);                       /* arg */
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
    lua_getglobal(L, "require");
    lua_pushliteral(L, "polysim.cli");
    lua_call(L, 1, 1);                                 /* cli */
    lua_getfield(L, -1, "main");                       /* cli main */
    lua_getglobal(L, "arg");                           /* cli main arg */
    lua_call(L, 1, 1);                                 /* cli status */
    return 1;
}

int main(int argc, char **argv) {
    lua_State *L = luaL_newstate();
    if (!L) {
        fputs("polysim: cannot create a Lua state\n", stderr);
        return 1;
    }
    lua_pushcfunction(L, ps_traceback);                /* the core's one handler (loop.c) */
    lua_pushcfunction(L, run);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int rc = lua_pcall(L, 2, 1, 1);
    int status;
    if (rc != LUA_OK) {
        /* A non-string error (an error object) passed through ps_traceback as is. */
        fprintf(stderr, "polysim: %s\n", luaL_tolstring(L, -1, NULL));
        status = 1;
    } else {
        status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    }
    lua_close(L);
    return status;
}
