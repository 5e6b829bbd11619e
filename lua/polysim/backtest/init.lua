-- polysim backtest: a strategy file replayed on a recording, in simulated time.
--
--   local bt = require "polysim.backtest"
--   local res = bt.run { strategy = "s.lua", data = "rec.jsonl", params = { n = "3" },
--                        balance = 10000, tier = "pro", latency_ms = 0, from = T, to = T }
--   res.summary (report.json's content), res.trades, res.equity, res.orders, res.exchange
--
-- The strategy runs on the ordinary runtime (polysim.strategy) with a simulated clock
-- (polysim.clock.sim) and a client whose transport calls an in-process exchange
-- (polysim.exchange) loaded with the recorded markets; every price record moves that
-- exchange's prices, every book record replaces its books; resting orders are matched
-- after each. No socket is opened, nothing really sleeps.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local clock_mod = require "polysim.clock"
local data = require "polysim.backtest.data"
local transport = require "polysim.backtest.transport"
local updown = require "polysim.backtest.updown"
local report = require "polysim.report"

local tostring, type = tostring, type
local fixed = require "polysim.exchange.fixed"
local book = require "polysim.exchange.book"
local markets = require "polysim.exchange.markets"
local orders = require "polysim.exchange.orders"
local accounts = require "polysim.exchange.accounts"

local _M = {}

-- A market spec for the exchange's data import from a recorded MarketDetail.
local function market_spec(m)
  local lp = type(m.live_price) == "table" and m.live_price or {}
  local outs = {}
  local by_label = {}
  for _, o in ipairs(type(lp.outcomes) == "table" and lp.outcomes or {}) do by_label[o.label] = o end
  for i, label in ipairs(type(m.outcomes) == "table" and m.outcomes or { "Yes", "No" }) do
    local o = by_label[label] or {}
    local tok = o.token_id
    if not tok and type(m.tokens) == "table" and m.tokens[i] then tok = m.tokens[i].token_id end
    outs[i] = { label = label, token_id = tok, price = o.price }
  end
  local function v(x) if x == core.null then return nil end return x end
  return {
    condition_id = m.condition_id, question = v(m.question) or m.condition_id, slug = v(m.slug),
    category = v(m.category), fee_rate = v(m.fee_rate), tick_size = v(m.tick_size), outcomes = outs,
    end_date = v(m.end_date), volume = v(m.volume), active = m.active ~= false,
    closed = m.closed == true, is_hot = m.is_hot == true, event_id = v(m.event_group_id),
  }
end

-- Price strings seen in the data -> fixed-point units (or false): recordings repeat the same
-- few hundred price strings, and parsing each one cost more than the rest of a price event
-- (the profile: fixed.parse and outcome_index's lower() were ~35% of the replay's VM time).
local price_memo, memo_n = {}, 0
local function price_units(v)
  local p = price_memo[v]
  if p ~= nil then return p end
  p = fixed.coerce(v, 4)
  if not (p and p > 0 and p < fixed.P) then p = false end
  if type(v) == "string" then
    if memo_n >= 65536 then price_memo, memo_n = {}, 0 end
    price_memo[v] = p
    memo_n = memo_n + 1
  end
  return p
end

-- label -> the outcome record of a market that markets.outcome_index names (false: none),
-- cached per label, beside the exchange's market record rather than in it (a market's
-- outcome records are made once, with the market)
local slot_caches = setmetatable({}, { __mode = "k" })
local function slot_of(m, slots, label)
  local idx = markets.outcome_index(m, label)
  local slot = idx and m.outcomes[idx] or false
  if type(label) == "string" then slots[label] = slot end
  return slot
end

local function apply_price(ex, msg)
  local m = ex.U.by_id[msg.market_id]
  local changed = false
  local outs = msg.outcomes
  if type(outs) == "table" then
    local slots = slot_caches[m]
    if not slots then slots = {}; slot_caches[m] = slots end
    for i = 1, #outs do
      local o = outs[i]
      local label, v = o.label, o.price
      local slot = slots[label]
      if slot == nil then slot = slot_of(m, slots, label) end
      if slot and v ~= nil then
        local p = price_memo[v]
        if p == nil then p = price_units(v) end
        if p then slot.price = p; changed = true end
      end
    end
  end
  if not changed and msg.buy then
    local p = price_units(msg.buy)
    if p then
      m.outcomes[1].price = p
      if m.binary then m.outcomes[2].price = fixed.P - p end
    end
  end
  -- books follow the price only where none was recorded: rebuilt lazily, when the next
  -- request or match needs them (the same draws in the same order: still deterministic)
  if not m.recorded_books and not m.dirty then
    m.dirty = true
    local d = ex.dirty
    d[#d + 1] = m
  end
end

local function clean(ex)
  local d = ex.dirty
  if #d == 0 then return end
  for i = 1, #d do
    local m = d[i]
    d[i] = nil
    m.dirty = nil
    markets.rebuild_books(m, ex.U.book_rng)
  end
end

local function match(ex, t)
  if #ex.O.rmarkets == 0 then return end
  clean(ex)
  orders.match(ex, t)
end

local function apply_book(ex, rec, path, n)
  local m = ex.U.by_id[rec.market_id]
  m.recorded_books = true
  for key, b in pairs(rec.books) do
    local idx = markets.outcome_index(m, key)
    if not idx then data.fail(path, n, "unknown outcome " .. tostring(key) .. " of " .. rec.market_id) end
    local bids, e1 = book.parse_levels(b.bids, "bids")
    if not bids then data.fail(path, n, e1) end
    local asks, e2 = book.parse_levels(b.asks, "asks")
    if not asks then data.fail(path, n, e2) end
    local o = m.outcomes[idx]
    o.bids, o.asks, o.pinned = bids, asks, true
  end
end

local TIER_WALLET = { free = true, pro = true, pro_plus = true, enterprise = true }

-- Runs a backtest; returns the result table or raises {data_error=...} / a message.
function _M.run(o)
  local path = o.data
  local warn = o.warn or function(msg) io.stderr:write("polysim: warning: ", msg, "\n") end
  local read = {} -- read.bytes(): the bytes data.events has read (the progress bar's ETA)
  local it = data.events(path, warn, read)
  local size
  do
    local f = io.open(path, "rb")
    if f then size = f:seek("end"); f:close() end
  end
  -- metadata: the market records before the first event
  local specs, first = {}, nil
  local t0
  for kind, t, rec, n in it do
    if kind == "market" then
      specs[#specs + 1] = market_spec(rec.market)
      t0 = t0 or t
    elseif kind ~= "meta" then
      first = { kind, t, rec, n }
      t0 = t0 or t
      break
    else
      t0 = t0 or rec.started_at
    end
  end
  if #specs == 0 then error({ data_error = path .. ": no market records" }, 0) end
  local from, to = o.from, o.to
  local clock = clock_mod.sim(from and math.max(from, t0 or from) or t0 or 0)
  local tier = o.tier or "pro"
  if not TIER_WALLET[tier] then error("--tier must be free, pro, pro_plus or enterprise", 0) end
  local tiers
  if o.balance then tiers = { [tier] = { wallet = math.floor(o.balance) } } end
  local exchange = require "polysim.exchange"
  local ex, xerr = exchange.new { seed = o.seed or 1, clock = clock.now, markets = { markets = specs, generate = 0 },
    tiers = tiers, bootstrap_plan = tier }
  if not ex then error("recorded markets: " .. tostring(xerr), 0) end
  ex.dirty = {}
  local ud = updown.new(ex)
  -- the account trades on the requested tier
  local user = ex.K.users[ex.user_id]
  if user and tier ~= "pro" then
    user.plan = tier
    user.wallet = nil
    accounts.ensure_wallet(user, ex.tiers, clock.now())
    for _, k in pairs(ex.K.by_id) do if k.user == user or k.user_id == ex.user_id then k.tier = tier end end
  end
  local polysim = require "polysim"
  local latency = (o.latency_ms or 0) / 1000
  local orders_seen = {}
  local client = polysim.new { transport = transport.new(ex, { latency = latency, clock = clock, orders = orders_seen,
    before = function() clean(ex) end }),
    -- retries (429, 5xx) wait on the data's clock: on the real loop they never woke. Outside
    -- a task (the stop's cancel-all) nothing else can run meanwhile: time just moves on.
    sleep = function(s)
      if ploop.current() then return clock.sleep(s) end
      clock.advance(clock.now() + s)
    end, api_key = ex.api_key, base_url = "http://127.0.0.1:1" }
  -- what the report needs
  local trades, equity = {}, {}
  ex:on("fill", function(uid, f)
    if uid ~= ex.user_id then return end
    trades[#trades + 1] = { t = clock.now(), market_id = f.market_id, side = f.side, outcome = f.outcome,
      quantity = f.quantity, price = f.price, fee = f.fee, order_id = f.order_id, liquidity = f.liquidity }
  end)
  local strategy = require "polysim.strategy"
  -- The feed of a replay: the data delivers the prices; subscribing delivers each new market's
  -- current price at once, as the live exchange's stream does (a live mean_reversion counted
  -- that first price towards its warm-up; the replay, without it, traded one price later).
  local rt
  local feed = {
    subscribe = function(_, ids)
      clean(ex)
      for _, id in ipairs(ids) do
        local msg = ex:price_message(id)
        if msg then rt:deliver(msg) end
      end
    end,
    unsubscribe = function() end, close = function() end,
  }
  rt = strategy.new { client = client, clock = clock, feed = feed, params = o.params or {},
    name = o.name, log_sink = o.log_sink, log_level = o.log_level or "warn", quiet = true,
    stop_grace = 0, spot_source = ud.source, on_stop_request = function(reason) o.stop_reason = o.stop_reason or reason end }
  ex:on("fill", function(uid, f) if uid == ex.user_id then rt:deliver(f) end end)
  local sample = o.sample or 60
  local next_sample = clock.now()
  local function take_sample()
    -- read off the exchange, not through the client: the harness's samples must not spend
    -- the strategy's rate limit (they did: a busy strategy's run died on a 429)
    clean(ex)
    local u = ex.K.users[ex.user_id]
    accounts.ensure_wallet(u, ex.tiers, clock.now())
    local b = accounts.balance_view(u)
    equity[#equity + 1] = { t = clock.now(), v = tostring(b.total_value), cash = tostring(b.balance) }
  end
  -- --from T: the records before T set the scene before the strategy starts at T (its
  -- on_start saw the file's first prices and books instead: a rebalancer's first round traded
  -- other quantities than the one started live at T)
  if from then
    while first and first[2] < from do
      local kind, x, n = first[1], first[3], first[4]
      if kind == "price" then apply_price(ex, x)
      elseif kind == "book" then apply_book(ex, x, path, n)
      elseif kind == "updown" then updown.updown(ud, x, path, n)
      elseif kind == "spot" then updown.spot(ud, x)
      elseif kind == "window" then updown.window(ud, x)
      elseif kind == "market" then data.fail(path, n, "market records must come before the first event") end
      local k1, t1, x1, n1 = it()
      first = k1 and { k1, t1, x1, n1 } or nil
    end
  end
  local ok, err = rt:start(o.strategy)
  if not ok then error("strategy: " .. tostring(err), 0) end
  take_sample()
  next_sample = next_sample + sample
  -- o.watch: the --dashboard replay (polysim.backtest.watch) sees the run and paces it
  local watch = o.watch
  if watch then watch.started(rt, client, clock, equity) end
  local events, span0, span1 = 0, nil, nil
  local progress = o.progress
  -- one event: kind "price" with x the message, or a record (x) of another kind
  local function step(kind, t, x, n)
    if from and t < from then
      if kind == "price" then apply_price(ex, x) elseif kind == "book" then apply_book(ex, x, path, n)
      elseif kind == "updown" then updown.updown(ud, x, path, n)
      elseif kind == "spot" then updown.spot(ud, x)
      elseif kind == "window" then updown.window(ud, x) end
      return
    end
    while next_sample <= t do
      clock.advance(next_sample)
      take_sample()
      next_sample = next_sample + sample
    end
    clock.advance(t)
    span0 = span0 or t
    span1 = t
    if kind == "price" then
      apply_price(ex, x)
      match(ex, t)
      events = events + 1
      rt:deliver(x)
    elseif kind == "book" then
      apply_book(ex, x, path, n)
      match(ex, t)
    elseif kind == "updown" then
      updown.updown(ud, x, path, n)
    elseif kind == "spot" then
      updown.spot(ud, x, true)
    elseif kind == "window" then
      clean(ex)
      updown.window(ud, x, true, rt)
    elseif kind == "market" then
      data.fail(path, n, "market records must come before the first event")
    end
    if progress and events % 4096 == 0 then progress(events, read.bytes(), size) end
    if watch then watch.event(t) end
  end
  if first then step(first[1], first[2], first[3], first[4]) end
  -- a price after --from with no sample due is step's price branch written out (perf, issue
  -- 12: one call fewer per event; clock.advance's, match's and the samples' checks inline)
  local O, deliver = ex.O, rt.deliver
  local advance = clock.advance
  for kind, t, x, n in it do
    if to and t > to then break end
    if kind == "price" and next_sample > t and not (from and t < from) then
      advance(t)
      span0 = span0 or t
      span1 = t
      apply_price(ex, x)
      if #O.rmarkets > 0 then match(ex, t) end
      events = events + 1
      deliver(rt, x)
      if progress and events % 4096 == 0 then progress(events, read.bytes(), size) end
      if watch then watch.event(t) end
    else
      step(kind, t, x, n)
    end
    if o.stop_reason then break end
  end
  local t_end = to or span1 or clock.now()
  if not o.stop_reason and t_end > clock.now() then clock.advance(t_end) end
  rt:stop(o.stop_reason or "end of data")
  take_sample()
  if o.progress_done then o.progress_done(events, read.bytes(), size) end
  local stats = rt.stats
  return {
    events = events, span = { from = span0, to = span1 }, trades = trades, equity = equity,
    orders = orders_seen, stats = stats,
    params = o.params or {}, latency_ms = o.latency_ms or 0, sample = sample, tier = tier,
    starting = o.balance, strategy = o.strategy, data = path,
    exchange = ex, -- the in-process exchange, as the run left it (its orders, positions, history)
  }
end

_M.report = report

-- polysim backtest ... (the command; see polysim.backtest.cli)
function _M.main(args) return require("polysim.backtest.cli").main(args) end

-- The loop is not needed: keep ploop referenced for tasks that suspend on the sim clock.
_M.loop = ploop

return _M
