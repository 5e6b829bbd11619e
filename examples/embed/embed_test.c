/* C-level test of the embedding API (include/polysim.h), built to build/tests/embed and run
 * by `make test`. Its last line is "N passed, N failed". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>

#include "polysim.h"

static int passed, failed;
static char dir[] = "/tmp/polysim-embed-XXXXXX";

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (cond) {                                                                       \
            passed++;                                                                     \
        } else {                                                                          \
            failed++;                                                                     \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
        }                                                                                 \
    } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *write_file(const char *name, const char *src) {
    static char path[8][256];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        exit(2);
    }
    fputs(src, f);
    fclose(f);
    return p;
}

/* Reads a number the strategy published with package.loaded.probe[key] = n. */
static double probe(polysim_host *h, const char *key) {
    lua_State *L = polysim_host_lua(h);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_getfield(L, -1, "probe");
    double v = -1;
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, key);
        if (lua_isnumber(L, -1)) v = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 3);
    return v;
}

static int lines_logged;
static void count_log(void *ud, int level, const char *line) {
    (void)ud;
    (void)level;
    (void)line;
    lines_logged++;
}

/* Steps with poll() on the fd and the timeout, like a program with its own loop, until
 * probe(key) >= want or `seconds` pass. */
static int drive_until(polysim_host *h, const char *key, double want, double seconds) {
    double deadline = now_s() + seconds;
    while (now_s() < deadline) {
        if (probe(h, key) >= want) return 1;
        int tmo = polysim_host_timeout_ms(h);
        if (tmo < 0 || tmo > 50) tmo = 50;
        struct pollfd p = {.fd = polysim_host_fd(h), .events = POLLIN};
        poll(&p, 1, tmo);
        if (polysim_host_step(h, 0) < 0) printf("# step: %s\n", polysim_host_error(h));
    }
    return probe(h, key) >= want;
}

static const char *TIMERS =
    "local probe = { ticks = 0, errors = 0 }\n"
    "package.loaded.probe = probe\n"
    "return {\n"
    "  on_start = function(ctx)\n"
    "    ctx:every(0.01, function(c)\n"
    "      probe.ticks = probe.ticks + 1\n"
    "      if probe.ticks == 3 then error('tick three fails') end\n"
    "      if probe.ticks == 20 then c:stop('enough ticks') end\n"
    "    end)\n"
    "  end,\n"
    "  on_stop = function(ctx, reason) probe.stopped = 1 end,\n"
    "}\n";

static void test_offline(void) {
    polysim_host_options o = {0};
    o.local_exchange = -1;
    o.base_url = "http://127.0.0.1:9"; /* nothing listens: these strategies make no requests */
    o.log = count_log;
    polysim_host *h = polysim_host_new(&o);
    CHECK(h != NULL, "polysim_host_new returned NULL");
    CHECK(polysim_host_error(h) == NULL, "new failed: %s", polysim_host_error(h));
    CHECK(polysim_host_fd(h) >= 0, "fd %d", polysim_host_fd(h));
    CHECK(strcmp(polysim_host_base_url(h), "http://127.0.0.1:9") == 0, "base url %s", polysim_host_base_url(h));

    /* broken files give errors with file and line, not crashes */
    const char *bad = write_file("bad.lua", "return {\n  on_start = function(ctx) end end,\n}\n");
    CHECK(polysim_host_load(h, bad) == -1, "broken strategy loaded");
    const char *e = polysim_host_error(h);
    CHECK(e && strstr(e, "bad.lua:2:"), "error without file:line: %s", e ? e : "(null)");
    CHECK(polysim_host_load(h, "/nonexistent/strategy.lua") == -1, "missing file loaded");
    CHECK(polysim_host_error(h) && strstr(polysim_host_error(h), "nonexistent"), "missing: %s",
          polysim_host_error(h) ? polysim_host_error(h) : "(null)");
    const char *throws = write_file("throws.lua", "return { on_start = function() error('no markets') end }");
    CHECK(polysim_host_load(h, throws) == -1, "failing on_start loaded");
    CHECK(polysim_host_error(h) && strstr(polysim_host_error(h), "no markets"), "on_start error: %s",
          polysim_host_error(h) ? polysim_host_error(h) : "(null)");
    CHECK(polysim_host_load(h, NULL) == -1, "NULL path loaded");

    /* a good one after the failures */
    const char *good = write_file("timers.lua", TIMERS);
    CHECK(polysim_host_load(h, good) == 0, "load: %s", polysim_host_error(h));
    CHECK(polysim_host_error(h) == NULL, "error after a good load: %s", polysim_host_error(h));
    CHECK(polysim_host_load(h, good) == -1, "second strategy accepted on one host");
    int tmo = polysim_host_timeout_ms(h);
    CHECK(tmo >= 0 && tmo <= 10, "timeout_ms %d with a 10 ms timer", tmo);

    /* step(h, 0) does not block */
    double t0 = now_s();
    for (int i = 0; i < 100; i++) polysim_host_step(h, 0);
    double took = now_s() - t0;
    CHECK(took < 0.1, "100 non-blocking steps took %.3f s", took);

    CHECK(drive_until(h, "ticks", 10, 5), "timers did not run: %g ticks", probe(h, "ticks"));
    CHECK(lines_logged >= 1, "the failing tick was not logged");

    /* the strategy stops itself after 20 ticks: step reports 1 */
    int rc = 0;
    double deadline = now_s() + 5;
    while (rc == 0 && now_s() < deadline) rc = polysim_host_step(h, 20);
    CHECK(rc == 1, "step did not report the stop (rc %d)", rc);
    CHECK(probe(h, "stopped") == 1, "on_stop did not run");
    CHECK(polysim_host_stop(h, "again", 1000) == 0, "stop after stop: %s", polysim_host_error(h));
    polysim_host_destroy(h);
    polysim_host_destroy(NULL);
}

static void test_budget(void) {
    polysim_host_options o = {0};
    o.local_exchange = -1;
    o.base_url = "http://127.0.0.1:9";
    o.budget_s = 0.05;
    o.log = count_log;
    polysim_host *h = polysim_host_new(&o);
    const char *spin = write_file("spin.lua",
                                  "local probe = { after = 0 }\n"
                                  "package.loaded.probe = probe\n"
                                  "return { on_start = function(ctx)\n"
                                  "  ctx:after(0, function() while true do end end)\n"
                                  "  ctx:after(0.01, function() probe.after = 1 end)\n"
                                  "end }\n");
    CHECK(polysim_host_load(h, spin) == 0, "load spin: %s", polysim_host_error(h));
    double t0 = now_s();
    int ok = drive_until(h, "after", 1, 3);
    double took = now_s() - t0;
    CHECK(ok, "the host did not go on after an endless callback");
    CHECK(took < 1.0, "the endless callback held the host %.3f s (budget 0.05 s)", took);
    polysim_host_destroy(h);
}

/* The step deadline: a callback computing for 0.8 s inside its 2 s budget is suspended at
 * each step's deadline and resumed at the next, so no polysim_host_step(h, 0) holds the
 * caller anywhere near that long (a loose bound, for loaded machines: half the callback's
 * time, a fifth of the budget; without the deadline one step lasts the whole 0.8 s), and
 * the callback finishes. */
static void test_step_deadline(void) {
    polysim_host_options o = {0};
    o.local_exchange = -1;
    o.base_url = "http://127.0.0.1:9";
    o.budget_s = 2.0;
    o.log = count_log;
    polysim_host *h = polysim_host_new(&o);
    const char *slow = write_file("slow.lua",
                                  "local probe = { done = 0, ticks = 0 }\n"
                                  "package.loaded.probe = probe\n"
                                  "return { on_start = function(ctx)\n"
                                  "  ctx:after(0, function(c)\n"
                                  "    local t, x = c:monotime(), 0\n"
                                  "    while c:monotime() - t < 0.8 do x = x + 1 end\n"
                                  "    probe.done = 1\n"
                                  "  end)\n"
                                  "end }\n");
    CHECK(polysim_host_load(h, slow) == 0, "load slow: %s", polysim_host_error(h));
    double worst = 0, deadline = now_s() + 10;
    long steps = 0;
    while (probe(h, "done") < 1 && now_s() < deadline) {
        double t0 = now_s();
        if (polysim_host_step(h, 0) < 0) printf("# step: %s\n", polysim_host_error(h));
        double took = now_s() - t0;
        if (took > worst) worst = took;
        steps++;
        if (polysim_host_timeout_ms(h) != 0) { /* nothing suspended: wait for the timer */
            struct pollfd p = {.fd = polysim_host_fd(h), .events = POLLIN};
            poll(&p, 1, 5);
        }
    }
    CHECK(probe(h, "done") == 1, "the slow callback did not finish across steps");
    CHECK(worst < 0.4, "one polysim_host_step(h, 0) took %.3f s (callback 0.8 s, budget 2 s)", worst);
    printf("# step deadline: %ld steps, worst %.2f ms\n", steps, worst * 1e3);
    polysim_host_destroy(h);
}

/* tick_s < 0 freezes the local exchange's prices, like `polysim run --tick 0`. */
static void test_frozen_prices(void) {
    polysim_host_options o = {0};
    o.local_exchange = 1;
    o.tick_s = -1;
    o.no_reload = 1;
    o.log = count_log;
    polysim_host *h = polysim_host_new(&o);
    CHECK(polysim_host_error(h) == NULL, "new frozen: %s", polysim_host_error(h));
    const char *src = write_file("frozen.lua",
        "local probe = { same = -1 }\n"
        "package.loaded.probe = probe\n"
        "local function prices(client, ids)\n"
        "  local t = {}\n"
        "  for _, p in ipairs(assert(client:prices(ids))) do t[#t + 1] = tostring(p.buy) end\n"
        "  return table.concat(t, ' ')\n"
        "end\n"
        "return { on_start = function(ctx)\n"
        "  local ids = {}\n"
        "  for m in ctx.client:markets { limit = 10 } do ids[#ids + 1] = m.condition_id; if #ids == 10 then break end end\n"
        "  local before = prices(ctx.client, ids)\n"
        "  ctx:after(1.2, function(c) probe.same = prices(c.client, ids) == before and 1 or 0 end)\n"
        "end }\n");
    CHECK(polysim_host_load(h, src) == 0, "load frozen: %s", polysim_host_error(h));
    CHECK(drive_until(h, "same", 0, 5), "no second price read");
    CHECK(probe(h, "same") == 1, "prices moved with tick_s < 0");
    polysim_host_destroy(h);
}

/* GET path from the dashboard at port while stepping the host (its server runs on the host's
 * loop); returns the bytes read into buf (NUL-terminated). */
static size_t dash_get(polysim_host *h, int port, const char *path, const char *host_hdr,
                       char *buf, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t n = 0;
    buf[0] = 0;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) goto out;
    char req[512];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                       path, host_hdr);
    if (write(fd, req, (size_t)len) != len) goto out;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    double end = now_s() + 5;
    while (now_s() < end && n + 1 < cap) {
        polysim_host_step(h, 10);
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r > 0) n += (size_t)r;
        else if (r == 0) break;
        else if (errno != EAGAIN && errno != EWOULDBLOCK) break;
    }
    buf[n] = 0;
out:
    if (fd >= 0) close(fd);
    return n;
}

static void test_dashboard(void) {
    polysim_host_options o = {0};
    o.local_exchange = 1;
    o.no_reload = 1;
    o.log = count_log;
    o.dashboard = 1;
    o.dashboard_control = 1;
    polysim_host *h = polysim_host_new(&o);
    CHECK(polysim_host_error(h) == NULL, "new with dashboard: %s", polysim_host_error(h));
    CHECK(polysim_host_dashboard_url(h) == NULL, "a dashboard before any strategy");
    const char *src = write_file("dash.lua", "return { on_start = function() end }\n");
    CHECK(polysim_host_load(h, src) == 0, "load: %s", polysim_host_error(h));
    const char *url = polysim_host_dashboard_url(h);
    int port = 0;
    CHECK(url && sscanf(url, "http://127.0.0.1:%d/", &port) == 1 && port > 0, "url %s", url ? url : "(null)");
    CHECK(url && strstr(url, "#token="), "no token in the control URL: %s", url ? url : "(null)");
    static char buf[1 << 17];
    char host_hdr[64];
    snprintf(host_hdr, sizeof host_hdr, "127.0.0.1:%d", port);
    dash_get(h, port, "/", host_hdr, buf, sizeof buf);
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "PS.dashboard"), "page: %.80s", buf);
    dash_get(h, port, "/", "evil.example", buf, sizeof buf);
    CHECK(strncmp(buf, "HTTP/1.1 403", 12) == 0, "a foreign Host got: %.40s", buf);
    dash_get(h, port, "/api/stop", host_hdr, buf, sizeof buf);
    CHECK(strncmp(buf, "HTTP/1.1 405", 12) == 0, "a GET that acts got: %.40s", buf);
    polysim_host_destroy(h);
    o.dashboard_port = 70000;
    h = polysim_host_new(&o);
    CHECK(polysim_host_error(h) && strstr(polysim_host_error(h), "dashboard_port"), "port 70000: %s",
          polysim_host_error(h) ? polysim_host_error(h) : "(accepted)");
    polysim_host_destroy(h);
}

static void test_bad_options(void) {
    polysim_host_options o = {0};
    o.lua_dir = "/nonexistent/lua";
    setenv("LUA_PATH_5_4", "/nonexistent/?.lua", 1);
    polysim_host *h = polysim_host_new(&o);
    CHECK(h != NULL, "NULL host");
    CHECK(polysim_host_error(h) && strstr(polysim_host_error(h), "polysim.host"), "error: %s",
          polysim_host_error(h) ? polysim_host_error(h) : "(null)");
    CHECK(polysim_host_fd(h) == -1, "fd of a failed host");
    CHECK(polysim_host_step(h, 0) == -1, "step on a failed host");
    CHECK(polysim_host_load(h, "x.lua") == -1, "load on a failed host");
    CHECK(polysim_host_timeout_ms(h) == -1, "timeout on a failed host");
    polysim_host_destroy(h);
}

static void test_local_exchange(void) {
    polysim_host_options o = {0};
    o.local_exchange = 1;
    o.tick_s = 0.05;
    o.no_reload = 1;
    o.log = count_log;
    polysim_host *h = polysim_host_new(&o);
    CHECK(polysim_host_error(h) == NULL, "new with a local exchange: %s", polysim_host_error(h));
    const char *base = polysim_host_base_url(h);
    CHECK(base && strncmp(base, "http://127.0.0.1:", 17) == 0, "base url %s", base ? base : "(null)");
    const char *trader = write_file("trader.lua",
        "local probe = { balances = 0, orders = 0, prices = 0 }\n"
        "package.loaded.probe = probe\n"
        "return {\n"
        "  cancel_on_stop = true,\n"
        "  on_start = function(ctx)\n"
        "    local ids = {}\n"
        "    for m in ctx.client:markets { limit = 5 } do ids[#ids + 1] = m.condition_id end\n"
        "    ctx:subscribe(ids)\n"
        "    ctx:every(0.02, function(c)\n"
        "      assert(c.client:balance())\n"
        "      probe.balances = probe.balances + 1\n"
        "    end)\n"
        "    local o = assert(ctx.client:place_order { market_id = ids[1], side = 'BUY', outcome = 'Yes',\n"
        "      order_type = 'limit', quantity = 5, price = '0.01' })\n"
        "    probe.orders = probe.orders + 1\n"
        "  end,\n"
        "  on_price = function(ctx) probe.prices = probe.prices + 1 end,\n"
        "}\n");
    CHECK(polysim_host_load(h, trader) == 0, "load trader: %s", polysim_host_error(h));
    CHECK(probe(h, "orders") == 1, "on_start's order");
    CHECK(drive_until(h, "balances", 5, 5), "requests did not complete: %g", probe(h, "balances"));
    CHECK(drive_until(h, "prices", 1, 5), "no price events: %g", probe(h, "prices"));
    /* the snapshot, read without touching the Lua state */
    polysim_snapshot snap;
    CHECK(polysim_host_snapshot(h, &snap) == 0, "snapshot: %s", polysim_host_error(h));
    CHECK(snap.name && strcmp(snap.name, "trader") == 0, "name %s", snap.name ? snap.name : "(null)");
    CHECK(snap.version == 1 && snap.running == 1, "version %d running %d", snap.version, snap.running);
    CHECK(snap.own_placed == 1 && snap.n_open_orders == 1, "own orders: placed %d, open %d", snap.own_placed,
          snap.n_open_orders);
    CHECK(snap.n_open_orders == 1 && snap.open_orders[0].order_id && snap.open_orders[0].price &&
              strcmp(snap.open_orders[0].price, "0.01") == 0,
          "open order %s at %s", snap.n_open_orders ? snap.open_orders[0].order_id : "-",
          snap.n_open_orders && snap.open_orders[0].price ? snap.open_orders[0].price : "-");
    CHECK(snap.own_pnl != NULL, "no own P&L");
    double until = now_s() + 5;
    while (now_s() < until) { /* the account part comes with a background refresh */
        polysim_host_step(h, 20);
        if (polysim_host_snapshot(h, &snap) == 0 && snap.cash) break;
    }
    CHECK(snap.cash && snap.equity && snap.pnl, "account figures: cash %s", snap.cash ? snap.cash : "(null)");
    CHECK(snap.errors == 0 && snap.last_error == NULL, "errors %d: %s", snap.errors,
          snap.last_error ? snap.last_error : "");
    lines_logged = 0;
    CHECK(polysim_host_stop(h, "done", 5000) == 0, "stop: %s", polysim_host_error(h));
    CHECK(lines_logged >= 1, "nothing logged on stop");
    /* cancel_on_stop: the resting order is gone */
    lua_State *L = polysim_host_lua(h);
    int rc = luaL_dostring(L,
        "local h = require('polysim.host').current\n"
        "local n = 0\n"
        "for _ in h.client:orders { status = 'PENDING' } do n = n + 1 end\n"
        "return n");
    CHECK(rc == LUA_OK && lua_tointeger(L, -1) == 0, "open orders after stop: %s",
          rc == LUA_OK ? lua_tostring(L, -1) : lua_tostring(L, -1));
    lua_settop(L, 0);
    polysim_host_destroy(h);
}

/* log_level, log_file, log_json, quiet (as polysim run's flags): the callback gets the
 * warning, not the info line; the file gets both, as JSON objects. */
static char logged[4096];
static void keep_log(void *ud, int level, const char *line) {
    (void)ud;
    (void)level;
    strncat(logged, line, sizeof logged - strlen(logged) - 2);
    strcat(logged, "\n");
}

static void test_logging(void) {
    char file[300];
    snprintf(file, sizeof file, "%s/host.log", dir);
    polysim_host_options o = {0};
    o.local_exchange = 1;
    o.no_reload = 1;
    o.log = keep_log;
    o.log_level = "debug";
    o.log_file = file;
    o.log_json = 1;
    o.quiet = 1;
    logged[0] = 0;
    polysim_host *h = polysim_host_new(&o);
    CHECK(polysim_host_error(h) == NULL, "new with log options: %s", polysim_host_error(h));
    const char *talk = write_file("talk.lua",
        "return { on_start = function(ctx) ctx.log.debug('DEBUG-LINE'); ctx.log.info('INFO-LINE');\n"
        "  ctx.log.warn('WARN-LINE') end }\n");
    CHECK(polysim_host_load(h, talk) == 0, "load: %s", polysim_host_error(h));
    polysim_host_destroy(h);
    CHECK(strstr(logged, "WARN-LINE") && !strstr(logged, "INFO-LINE"), "quiet callback got: %s", logged);
    CHECK(strstr(logged, "{\"") != NULL, "not JSON: %s", logged);
    char text[8192] = "";
    FILE *f = fopen(file, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
    }
    CHECK(strstr(text, "\"msg\":\"DEBUG-LINE\"") && strstr(text, "\"msg\":\"INFO-LINE\"") &&
              strstr(text, "\"strategy\":\"talk\""),
          "log file: %s", text);
    o.log_level = "loud";
    h = polysim_host_new(&o);
    CHECK(polysim_host_error(h) && strstr(polysim_host_error(h), "level"), "bad log_level: %s",
          polysim_host_error(h) ? polysim_host_error(h) : "(null)");
    polysim_host_destroy(h);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_offline();
    test_budget();
    test_step_deadline();
    test_local_exchange();
    test_frozen_prices();
    test_dashboard();
    test_logging();
    test_bad_options(); /* last: it spoils LUA_PATH for this process */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    printf("embed API: %d passed, %d failed\n", passed, failed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
