/* polysim embedding API: run a PolySimulator trading strategy (a Lua file, see
 * examples/README.md for the contract) inside another program's main loop.
 *
 * A host owns a Lua 5.4 state with polysim loaded, one event loop (epoll: HTTP transfers,
 * timers, file watches and, optionally, a local exchange serving in the same process), and
 * the strategy runtime. Nothing runs on threads of its own: everything happens inside
 * polysim_host_step(), which returns within the timeout you give it plus a small bound:
 * strategy callbacks that wait on the network yield, and a callback still computing at the
 * step's deadline is suspended there (a count hook yields it every 1000 VM instructions
 * once the deadline has passed) and resumed at the next step, before anything else runs.
 * Its time budget counts only the time it ran. (The bound: about 1000 instructions of the
 * callback, or one C call it is inside, such as a long string.rep or table.sort, which
 * cannot be suspended.)
 *
 * Typical use in a frame loop:
 *
 *     polysim_host_options o = {0};          // zero = defaults
 *     o.local_exchange = 1;                  // trade against an in-process exchange
 *     polysim_host *h = polysim_host_new(&o);
 *     if (polysim_host_error(h)) { fprintf(stderr, "%s\n", polysim_host_error(h)); ... }
 *     if (polysim_host_load(h, "strategy.lua") != 0) { ... polysim_host_error(h) ... }
 *     while (running) {
 *         update_and_render();
 *         polysim_host_step(h, 0);           // run whatever is ready, return at once
 *     }
 *     polysim_host_stop(h, "quit", 2000);    // on_stop, cancel orders if asked
 *     polysim_host_destroy(h);
 *
 * Or, in a program with its own poll()/epoll loop: watch polysim_host_fd(h) for
 * readability, wake up at the latest after polysim_host_timeout_ms(h), and call
 * polysim_host_step(h, 0) then.
 *
 * Errors: functions returning int give 0 on success and -1 on failure, with the reason in
 * polysim_host_error(h) (file and line for strategy errors). The host stays usable after a
 * failure. Runtime errors inside strategy callbacks are not failures of the host: they are
 * logged (with a traceback) and the strategy goes on.
 *
 * A host is not thread-safe: use each one from one thread at a time. Several hosts may run
 * in one process, each in its own thread. Signals are left alone (that is your program's
 * business).
 */
#ifndef POLYSIM_H
#define POLYSIM_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define POLYSIM_API __attribute__((visibility("default")))
#else
#define POLYSIM_API
#endif

typedef struct polysim_host polysim_host;
typedef struct lua_State lua_State;

/* Log levels passed to polysim_log_fn. */
enum { POLYSIM_LOG_DEBUG = 10, POLYSIM_LOG_INFO = 20, POLYSIM_LOG_WARN = 30, POLYSIM_LOG_ERROR = 40 };

/* Receives every log line (timestamped, without a newline, API keys redacted). Called from
 * inside polysim_host_* calls, on their thread. */
typedef void (*polysim_log_fn)(void *ud, int level, const char *line);

/* Zero-initialise, then set what you need; new fields are only ever added at the end. */
typedef struct polysim_host_options {
    const char *lua_dir;    /* polysim's Lua files; NULL: $POLYSIM_LUA_DIR, else found beside the
                               executable (PREFIX/bin -> PREFIX/share/lua/5.4; the build tree's
                               build/bin -> lua/), else the prefix `make install` compiled in,
                               else package.path as LUA_PATH_5_4 leaves it */
    const char *api_key;    /* NULL: $POLYSIM_API_KEY */
    const char *base_url;   /* NULL: $POLYSIM_BASE_URL, else https://api.polysimulator.com */
    int local_exchange;     /* 1: start a local exchange in this process and trade on it;
                               -1: never (the real service, or base_url); 0: unless a base URL
                               is given (here or $POLYSIM_BASE_URL): an API key alone never
                               sends orders to the real service */
    unsigned seed;          /* local exchange's market universe (0: 1) */
    double tick_s;          /* local exchange's price moves, seconds apart (0: 0.5; < 0: prices
                               never move, like `polysim run --tick 0`) */
    double budget_s;        /* time a callback may run without yielding (0: 0.5; < 0: none) */
    int no_reload;          /* 1: do not reload the strategy when its files change */
    int status;             /* 1: log a status line (cash, P&L, positions) every status_s */
    double status_s;        /* 0: 10 */
    polysim_log_fn log;     /* NULL: log lines go to stderr */
    void *log_ud;
    /* The live dashboard (as `polysim run --dashboard`): 1 serves one page on 127.0.0.1 once
     * a strategy is loaded, never another interface; read its address with
     * polysim_host_dashboard_url. Read-only unless dashboard_control is 1: then the page has
     * Stop and Cancel buttons, and every such request must carry the per-run token that the
     * URL holds (#token=...) and come from the page's own Origin (a browser visiting another
     * site can reach 127.0.0.1 too; the token and Origin check keep that site from acting). */
    int dashboard;
    unsigned dashboard_port;   /* 0: any free port */
    int dashboard_control;
    /* Logging, as `polysim run`'s --log-level, --log-file, --log-format json and --quiet. */
    const char *log_level;  /* "debug", "info", "warn" or "error"; NULL: "info" */
    const char *log_file;   /* also append every line at log_level here; NULL: none */
    int log_json;           /* 1: each line a JSON object (time, level, strategy, msg) */
    int quiet;              /* 1: info and debug lines reach log_file only, not log/stderr */
} polysim_host_options;

/* Creates a host; opts may be NULL. Returns NULL only when out of memory. When creation
 * failed otherwise (no Lua files found, the local exchange could not start, a bad option),
 * polysim_host_error() says why and every other call fails; destroy it as usual. */
POLYSIM_API polysim_host *polysim_host_new(const polysim_host_options *opts);

/* Loads a strategy file and starts it: compiles it, runs its on_start (stepping the loop
 * until that returns), and starts watching its files for hot reload. One strategy per host
 * (`polysim run a.lua b.lua` runs several, each with its own runtime);
 * after a failed load you may try again. 0 | -1 */
POLYSIM_API int polysim_host_load(polysim_host *h, const char *path);

/* Runs what is ready (network answers, timers, events for the strategy), waiting at most
 * timeout_ms for something to happen (0: do not wait; < 0: wait until something does).
 * Returns 0, 1 once the strategy has stopped (it called ctx:stop(), or polysim_host_stop
 * ran), or -1 when a loop callback raised (see polysim_host_error; the host goes on). */
POLYSIM_API int polysim_host_step(polysim_host *h, int timeout_ms);

/* A file descriptor that becomes readable when polysim_host_step has work to do (an epoll
 * fd). Do not read it or close it. -1 when the host failed to start. */
POLYSIM_API int polysim_host_fd(const polysim_host *h);

/* Milliseconds until polysim_host_step must run even if the fd stays quiet (timers, the
 * local exchange's clock, HTTP timeouts); -1 when only the fd matters. Rounded up. */
POLYSIM_API int polysim_host_timeout_ms(polysim_host *h);

/* Stops the strategy: no more events, on_stop(ctx, reason) runs, open orders are cancelled
 * when the strategy set cancel_on_stop, streams close. Steps the loop for at most
 * timeout_ms (< 0: 15 s). 0 when it finished in time, -1 otherwise. */
POLYSIM_API int polysim_host_stop(polysim_host *h, const char *reason, int timeout_ms);

/* The last error message, or NULL. Valid until the next call on h. */
POLYSIM_API const char *polysim_host_error(const polysim_host *h);

/* The base URL the host trades against (the local exchange's when it runs one), or NULL. */
POLYSIM_API const char *polysim_host_base_url(const polysim_host *h);

/* The dashboard's URL (with the token when dashboard_control is on: treat it as a secret),
 * or NULL when there is none (not asked for, no strategy loaded yet, or it failed to start:
 * the log says why). Valid until the next polysim_host_* call on h. */
POLYSIM_API const char *polysim_host_dashboard_url(polysim_host *h);

/* Where the strategy stands, read with polysim_host_snapshot. Money and quantities are
 * decimal strings ("9967.84"), NULL when not known. Everything points into memory the host
 * owns, valid until the next polysim_host_* call on h. */
typedef struct polysim_position {
    const char *market_id, *outcome, *quantity, *avg_price, *mark, *unrealized;
} polysim_position;

typedef struct polysim_order {  /* one of the strategy's own open orders */
    const char *order_id, *client_order_id, *market_id, *side, *outcome, *price, *quantity, *status;
} polysim_order;

typedef struct polysim_snapshot {
    const char *name;           /* the strategy's name; NULL before a load */
    int version;                /* 1, then +1 per successful reload; 0 before a load */
    int running;                /* 1 until it stopped */
    const char *cash, *equity, *pnl;  /* the account's: refreshed in the background at most
                                         once a second by this call; NULL until the first */
    const char *own_pnl;        /* P&L of the strategy's own orders (fills at the last prices) */
    int own_placed, own_filled; /* the strategy's own orders placed and (partly) filled */
    int n_positions;
    const polysim_position *positions;
    int n_open_orders;
    const polysim_order *open_orders;
    int errors, reloads;        /* callback errors; successful reloads */
    const char *last_error;     /* the last callback error (with its traceback), or NULL */
} polysim_snapshot;

/* Fills *out with the strategy's snapshot. 0 | -1 */
POLYSIM_API int polysim_host_snapshot(polysim_host *h, polysim_snapshot *out);

/* The host's Lua state, for programs that want to reach into it (e.g. read the strategy's
 * state with require("polysim.host").current). Do not close it. */
POLYSIM_API lua_State *polysim_host_lua(polysim_host *h);

/* Stops the strategy if it still runs (2 s at most), closes the local exchange and frees
 * everything. NULL is fine. */
POLYSIM_API void polysim_host_destroy(polysim_host *h);

/* The setup every polysim Lua state needs: opens the standard libraries, preloads
 * polysim.core and puts lua_dir (NULL: the build's default) first on package.path. Raises
 * Lua errors like any lua_* call; use it under lua_pcall. The `polysim` command and
 * polysim_host_new both do exactly this. */
POLYSIM_API void polysim_openlibs(lua_State *L, const char *lua_dir);

#ifdef __cplusplus
}
#endif

#endif
