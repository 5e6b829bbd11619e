-- polysim record --spot over a window boundary, and the backtest of what it wrote: the local
-- exchange runs in this process on a clock the spec moves (a second per step, a few steps a
-- second), `polysim record` records it from its own process over loopback. The clock starts
-- 12 s before a 5-minute boundary B and, around it, one late tick walks from B - 1 to B + 1
-- (as a loaded exchange's does): the window opening at B opens in the middle of the recording.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local backtest = require "polysim.backtest"
local H = require "helper"
local btdata = require "btdata"

local EXE = os.getenv("POLYSIM_EXE") or "build/bin/polysim"
local q, slurp = btdata.q, btdata.slurp
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. q(tmp)))

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

local function records(path)
  local list = {}
  for line in io.lines(path) do list[#list + 1] = assert(core.json_decode(line)) end
  return list
end

describe("polysim record --spot across a window boundary", function()
  local B = (os.time() // 300 + 2) * 300
  local clock = { t = B - 12 }
  local srv, client, recs, W2, live_tokens, live_ptb
  local data = tmp .. "/rec.jsonl"

  setup(function()
    srv = H.exchange { seed = 9, clock = function() return clock.t end, tick = false }
    client = H.client(srv)
    local rk = assert(client:create_key { name = "recorder" })
    assert(os.execute(([[unset POLYSIM_BASE_URL LD_PRELOAD
( POLYSIM_API_KEY=%s timeout -k 5 60 %s record --base-url %s --hot 1 --books 0 --spot BTC --windows 1 -o %s > %s 2>&1 &
  echo $! > %s; wait $!; echo $? > %s ) &]]):format(q(rk.raw_key), q(EXE), q(srv.base_url), q(data),
      q(tmp .. "/rec.out"), q(tmp .. "/rec.pid"), q(tmp .. "/rec.rc"))))
    local function spots()
      local n = 0
      for _ in (slurp(data) or ""):gmatch('"type":"spot"') do n = n + 1 end
      return n
    end
    local function step(dt)
      clock.t = clock.t + dt
      srv.exchange:tick(dt)
      ploop.run_until(function() return false end, 0.25)
    end
    -- the recorder is listening once the subscribe snapshot's tick is in the file
    assert(ploop.run_until(function() return spots() >= 1 end, 20), slurp(tmp .. "/rec.out"))
    while clock.t < B - 1 do step(1) end
    step(2)                              -- B - 1 -> B + 1: second B is walked, not ticked
    for _ = 1, 8 do step(1) end
    -- the recorder stops on TERM, writing what it has
    ploop.run_until(function() return false end, 0.5)
    os.execute("kill -TERM $(cat " .. q(tmp .. "/rec.pid") .. ")")
    assert(ploop.run_until(function() return slurp(tmp .. "/rec.rc") ~= nil end, 20), "the recorder did not stop")
    recs = records(data)
    for _, m in ipairs(srv.exchange.U.all) do
      if m.updown and m.updown.asset == "BTC" and m.updown.interval == "5M" and m.updown.start == B then W2 = m end
    end
    assert(W2, "the exchange has no window opening at B")
    live_tokens = { W2.outcomes[1].token_id, W2.outcomes[2].token_id }
    live_ptb = assert(client:price_to_beat(W2.condition_id)).price
  end)
  teardown(function() if srv then srv:close() end end)

  it("the recorder exits cleanly", function()
    assert.equal("0", (slurp(tmp .. "/rec.rc") or ""):match("%d+"), slurp(tmp .. "/rec.out"))
  end)

  local function row_of(id)
    for i, r in ipairs(recs) do
      if r.type == "updown" and r.window.condition_id == id then return i, r.window end
    end
  end

  it("a window that opens mid-recording gets its row with its token ids", function()
    local at, row = row_of(W2.condition_id)
    assert(at, "no updown record of the window opening at B")
    local nested = row.markets and row.markets[1]
    assert(nested, "the row has no nested market")
    assert.same(live_tokens, core.json_decode(nested.token_ids))
  end)

  it("a window that opens mid-recording gets its prices, after its row", function()
    local at = row_of(W2.condition_id)
    assert(at, "no updown record of the window opening at B")
    local prices = 0
    for i, r in ipairs(recs) do
      if r.type == "price" and r.msg.market_id == W2.condition_id then
        assert.is_true(i > at, "a price of the window before its updown record")
        prices = prices + 1
      end
    end
    assert.is_true(prices >= 1, "no price record of the window opening at B")
  end)

  it("the stream has the tick of second B, at the window's strike, though no tick fell in it", function()
    local tick
    for _, r in ipairs(recs) do
      if r.type == "spot" and r.symbol == "BTC" and r.timestamp == iso(B) then tick = r end
    end
    assert(tick, "no BTC tick of " .. iso(B) .. " recorded")
    assert.equal(live_ptb, tick.price)
  end)

  it("the backtest shows the window under its recorded condition id, token ids and strike", function()
    local strat = tmp .. "/ids.lua"
    btdata.write(strat, ([[
local S = {}
function S.on_start(ctx) ctx:subscribe_spot "BTC" end
function S.on_window(ctx, ev)
  if ev.event ~= "open" or ev.market_id ~= %q then return end
  local m = assert(ctx.client:market(ev.market_id))
  local ptb = assert(ctx.client:price_to_beat(ev.market_id))
  ctx.log.warn("OPEN %%s %%s %%s ptb=%%s", ev.market_id, m.tokens[1].token_id, m.tokens[2].token_id,
    tostring(ptb.price))
end
return S
]]):format(W2.condition_id))
    local lines = {}
    backtest.run { strategy = strat, data = data, log_sink = function(l) lines[#lines + 1] = l end }
    local logs = table.concat(lines, "\n")
    assert.truthy(logs:find(("OPEN %s %s %s ptb=%s"):format(W2.condition_id, live_tokens[1], live_tokens[2],
      tostring(live_ptb)), 1, true), logs)
  end)
end)

