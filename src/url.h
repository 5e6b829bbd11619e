/* URL parsing and escaping with curl's URL API (url.c). */
#ifndef POLYSIM_URL_H
#define POLYSIM_URL_H

#include <lua.h>

/* Registers core.url_parse and core.url_escape into the table at the top of the stack. */
void ps_url_open(lua_State *L);

#endif
