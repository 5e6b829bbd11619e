-- WebSocket price feed throughput.
--   lua path: a flood of price frames from a local WebSocket server (core.serve's upgrade,
--             in this process and thread, sending one pre-built blob) read by core.ws_connect on the
--             loop, each message JSON-decoded and delivered to a Lua callback.
--   C only:   the same frames parsed by ps_ws_feed (src/ws.c) from memory in 16 KiB chunks,
--             events counted in C: no socket, no Lua.
--   stream:   the same flood through client:prices_stream (token, subscribe, on_price).
-- Ratio: lua path / C only. BENCH_N messages (default 200000).
local core = require "polysim.core"
local ploop = require "polysim.loop"

local N = tonumber(os.getenv "BENCH_N") or 200000

local PRICE = core.json_encode {
  type = "price", market_id = "0x99bcc3ac96e0d9cb5b7b7e2385eeb5a55d564d659be975fac0887daf9cff65ca",
  buy = "0.44", sell = "0.56", best_bid = "0.43", best_ask = "0.45", volume = "117720.61",
  source = "orderbook", updated_at = "2026-11-23T09:36:38.198078Z",
  outcomes = core.array {
    { label = "Yes", price = "0.44", token_id = "2256572448375635090822915258904212097411011769993726164461609059437692336902" },
    { label = "No", price = "0.56", token_id = "628036355368154088783810076615871783693574525215843135482397131863498705020105" },
  },
}
local frame = core.ws_frame("text", PRICE)
local blob = frame:rep(N)

-- Lua path ------------------------------------------------------------------------------------
local server = assert(core.serve { port = 0, handler = function()
  return { upgrade = { on_open = function(conn) conn:send_raw(blob) end } }
end })
local got, bytes = 0, 0
local function on_price(msg) got = got + 1; bytes = bytes + #msg.market_id end
local t0
local conn = core.ws_connect {
  url = "ws://127.0.0.1:" .. server:port() .. "/flood",
  on_open = function() t0 = core.monotime() end,
  on_message = function(text) on_price(core.json_decode(text)) end,
  on_close = function(code, reason) error("flood connection closed: " .. code .. " " .. reason) end,
}
assert(ploop.run_until(function() return got >= N end, 120), "flood did not arrive")
local lua_rate = N / (core.monotime() - t0)
conn:close()
server:close()

-- The same flood through client:prices_stream (token, subscribe, decode, on_price).
local polysim = require "polysim"
local feed = assert(core.serve { port = 0, handler = function(req)
  if req.path == "/v1/keys/ws-token" then return { status = 200, body = '{"token":"t","expires_in":60}' } end
  local sent = false
  return { upgrade = { on_message = function(c)
    if not sent then sent = true; c:send_raw(blob) end
  end } }
end })
local client = polysim.new { base_url = "http://127.0.0.1:" .. feed:port(), api_key = "ps_live_" .. ("0"):rep(64) }
local n_stream, t_stream = 0, nil
local stream = client:prices_stream { markets = { "m" }, on_price = function()
  n_stream = n_stream + 1
  if n_stream == 1 then t_stream = core.monotime() end
end }
assert(ploop.run_until(function() return n_stream >= N end, 120), "stream flood did not arrive")
local stream_rate = (N - 1) / (core.monotime() - t_stream)
stream:close()
feed:close()

-- C only ----------------------------------------------------------------------------------------
local C_SRC = [[
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "ws.h"
static size_t texts;
static void cb(void *ud, const ps_ws_event *ev) { (void)ud; if (ev->type == PS_WS_EV_TEXT) texts++; }
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb");
    if (!f || argc < 3) return 2;
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) return 2;
    int rounds = atoi(argv[2]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int r = 0; r < rounds; r++) {
        ps_ws_conn c;
        ps_ws_init(&c, PS_WS_CLIENT, 0, NULL, NULL);
        for (long off = 0; off < n; off += 16384)
            ps_ws_feed(&c, buf + off, (size_t)(n - off < 16384 ? n - off : 16384), cb, NULL);
        ps_ws_free(&c);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%zu %.9f\n", texts, s);
    return 0;
}
]]
os.execute("mkdir -p build/bench")
local src, bin, data = "build/bench/ws_parse.c", "build/bench/ws_parse", "build/bench/ws_flood.bin"
local f = assert(io.open(src, "w")); f:write(C_SRC); f:close()
f = assert(io.open(data, "wb")); f:write(blob); f:close()
local cc = os.getenv "CC" or "cc"
assert(os.execute(("%s -O2 -std=c11 -D_GNU_SOURCE -Isrc -I/usr/include/lua5.4 -o %s %s src/ws.c src/sha1.c src/header.c -llua5.4")
  :format(cc, bin, src)), "cannot build the C-only parser loop")
local rounds = 5
local p = assert(io.popen(bin .. " " .. data .. " " .. rounds))
local out = p:read("a")
p:close()
os.remove(data)
local texts, secs = out:match("^(%d+) (%S+)")
texts, secs = tonumber(texts), tonumber(secs)
assert(texts == N * rounds, "C parser counted " .. tostring(texts) .. " messages")
local c_rate = texts / secs

print(string.format("price messages, socket -> decode -> Lua callback  %10.0f msg/s  (%d messages of %d bytes)",
  lua_rate, N, #PRICE))
print(string.format("the same through client:prices_stream{on_price}   %10.0f msg/s", stream_rate))
print(string.format("frames parsed in C only (ps_ws_feed, memory)      %10.0f msg/s  (%d x %d)", c_rate, rounds, N))
print(string.format("ratio Lua path / C only                           %10.3f", lua_rate / c_rate))
