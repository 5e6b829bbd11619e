-- polysim record: writes what a strategy would have seen into a recording (the format is in
-- polysim.backtest.data and the README): the markets' metadata at start, every price message
-- of the chosen markets from the WebSocket stream with its receive time, the books that go
-- with them (--price-books) and every --books seconds each market's order book. Each record
-- is written and flushed as one line, so an interruption leaves every complete line readable.
--
-- Books go with prices: a backtest applies the records in file order, so a book fetched after
-- a price message but written after it left the replay quoting on the previous book for the
-- length of a request (a market maker's mid, read off the book right after the price moved,
-- was stale: 19 live quotes against 17 replayed). So price messages are queued, and one writer
-- takes them in batches (what arrived meanwhile: one tick of the local exchange), fetches the
-- books (--price-books all: of every recorded market, since the local exchange redraws every
-- book each tick, moved or not; moved: of the batch's markets only; off: none) and writes
-- them, stamped with the batch's first receive time, before the batch's prices. The periodic
-- snapshots go through the same writer, so times never go backwards.
--
-- With --spot the windows are followed: a window that opens during the recording (its first
-- lifecycle message) goes through the writer too, which reads its row (token ids and all),
-- writes it and only then subscribes its prices and books; a settled window is dropped from
-- both, so a long recording's subscription stays at the windows that are live.
--
--   polysim record [--base-url URL] [--markets ID,...|--hot N] [--duration S] [--books S]
--                  [--price-books all|moved|off] [--spot SYM,... [--windows N]] -o FILE
--   polysim record --from-candles --markets ID,... [--interval 1m] [--days N] -o FILE
-- Without POLYSIM_API_KEY and --base-url it records a local exchange started in this process.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local log = require "polysim.log"

local _M = {}

local USAGE = [=[
usage: polysim record [--base-url URL] [--markets ID,...|--hot N] [--duration S] [--books S]
                      [--price-books all|moved|off] [--spot SYM,... [--windows N]] -o FILE
       polysim record --from-candles --markets ID,... [--interval 1m] [--days N] -o FILE
  Records price messages (with receive time), order books every --books seconds (default 5;
  0: none) and the markets' metadata into FILE (JSON Lines, appended; see the README).
  --price-books: with each batch of price messages, the books of every recorded market
  (all, the default), of the markets whose price moved (moved) or none (off), written
  before those prices.
  --spot BTC,ETH: also the underlyings' spot ticks (GET /prices/stream), their Up/Down
  windows' lifecycle messages, and the --windows N (default 2) windows of each that expire
  next (metadata, prices and books); a window that opens during the recording is followed
  from its first lifecycle message (a settled one leaves), so that a backtest can replay an
  Up/Down strategy.
]=]

local function die(msg)
  io.stderr:write("polysim record: ", msg, "\n")
  return 2
end

local function writer(path)
  local f, err = io.open(path, "ab")
  if not f then return nil, err end
  local enc = core.json_encode
  return function(rec)
    f:write(enc(rec, { sort_keys = true }), "\n")
    f:flush()
  end, f
end

local function levels(list)
  local out = core.array {}
  for i, lv in ipairs(type(list) == "table" and list or {}) do out[i] = { lv.price or lv[1], lv.size or lv[2] } end
  return out
end

local function book_record(client, m, t)
  local books = {}
  for _, label in ipairs(m.outcomes or {}) do
    local b, err = client:book(m.condition_id, { outcome = label })
    if not b then error(tostring(err), 0) end
    books[label] = { bids = levels(b.bids), asks = levels(b.asks) }
  end
  return { type = "book", t = t, market_id = m.condition_id, books = books }
end

-- The writer of a live recording: queue(rec) takes price records and snapshot marks
-- ({snapshot = true, t}) in arrival order; one task writes them. For the price at the head it
-- fetches the books (the header's --price-books), then writes them, stamped with that price's
-- receive time, and after them every price that arrived meanwhile: those prices were sent
-- before the books were read, so the books are at least as new as each of them (one tick of
-- the local exchange arrives as several messages: one batch, one set of book requests).
-- Records leave the queue only once written: flush() writes the prices left (at stop).
local function writer_queue(client, list, write, mode, is_done)
  local q, busy = {}, false
  local by_id = {}
  for _, m in ipairs(list) do by_id[m.condition_id] = m end
  -- the markets change while a fetch is under way (windows come and go): a new list each time
  local function add(m)
    if by_id[m.condition_id] then return end
    local l = table.move(list, 1, #list, 1, {})
    l[#l + 1] = m
    list, by_id[m.condition_id] = l, m
  end
  local function remove(id)
    if not by_id[id] then return end
    local l = {}
    for _, m in ipairs(list) do if m.condition_id ~= id then l[#l + 1] = m end end
    list, by_id[id] = l, nil
  end
  local function fetch(ms, t)
    local recs = {}
    for _, m in ipairs(ms) do
      local ok, rec = pcall(book_record, client, m, t)
      if is_done() then return nil end
      if ok then recs[#recs + 1] = rec
      else io.stderr:write("polysim record: book of ", m.condition_id, ": ", tostring(rec), "\n") end
    end
    return recs
  end
  local function drain()
    while #q > 0 and not is_done() do
      local head = q[1]
      if head.follow then
        -- a window that opened meanwhile: its row (metadata and token ids), written before
        -- anything of it, then its market joins the books and the price subscription
        local w = head.follow(head.window)
        if is_done() then break end
        write { type = "updown", t = head.t, window = w }
        add { condition_id = w.condition_id, outcomes = { "Up", "Down" } }
        head.subscribe(w.condition_id)
        table.remove(q, 1)
        goto continue
      end
      if head.forget then
        remove(head.forget)
        table.remove(q, 1)
        goto continue
      end
      do
      local ms = list
      if not head.snapshot and head.type ~= "price" then
        ms = {} -- spot ticks and window messages need no books: written as they came
      elseif not head.snapshot and mode ~= "all" then
        ms = {}
        if mode == "moved" then
          local seen = {}
          for _, r in ipairs(q) do
            local m = not r.snapshot and by_id[r.msg.market_id]
            if m and not seen[m] then seen[m] = true; ms[#ms + 1] = m end
          end
        end
      end
      local recs = fetch(ms, head.t)
      if not recs then break end
      for _, rec in ipairs(recs) do write(rec) end
      local n = head.snapshot and 1 or 0
      if not head.snapshot then
        -- a price batch takes what follows it; a run of other records stops at a price
        local prices = head.type == "price"
        local function plain(r) return r and not r.snapshot and not r.follow and not r.forget end
        while plain(q[n + 1]) and (prices or q[n + 1].type ~= "price") do n = n + 1 end
        for k = 1, n do write(q[k]) end
      end
      table.move(q, n + 1, #q + n, 1) -- drop the n written (the tail moves up, nils behind it)
      end
      ::continue::
    end
    busy = false
  end
  local W = {}
  function W.queue(rec)
    q[#q + 1] = rec
    if not busy then
      busy = true
      ploop.spawn(drain)
    end
  end
  function W.pending() return #q > 0 end
  function W.flush()
    for _, r in ipairs(q) do
      if r.follow then write { type = "updown", t = r.t, window = r.window }
      elseif not r.snapshot and not r.forget then write(r) end
    end
    q = {}
  end
  return W
end

local function choose(client, o)
  local list = {}
  if o.markets then
    for id in o.markets:gmatch("[^,]+") do
      local m, err = client:market(id)
      if not m then return nil, "market " .. id .. ": " .. tostring(err) end
      list[#list + 1] = m
    end
    return list
  end
  local want = math.tointeger(o.hot) or 5
  for m in client:markets { limit = 50 } do
    if not m.closed and m.live_price ~= core.null then
      local d = client:market(m.condition_id)
      if d then list[#list + 1] = d end
    end
    if #list >= want then break end
  end
  return list
end

local function from_candles(client, o, write)
  local days = o.days or 1
  local interval = days <= 1 and "1d" or days <= 7 and "1w" or "max"
  local ms = {}
  for _, m in ipairs(assert(choose(client, o))) do
    ms[#ms + 1] = m
  end
  local events = {}
  for _, m in ipairs(ms) do
    local cs, err = client:candles(m.condition_id, { interval = interval })
    if not cs then return nil, "candles of " .. m.condition_id .. ": " .. tostring(err) end
    for _, c in ipairs(cs.candles or cs) do
      local t = tonumber(c.t) or require("polysim.exchange.markets").parse_time(c.t)
      local p = tonumber(c.c or c.close)
      if t and p then
        local q = string.format("%.4f", p)
        events[#events + 1] = { t = t, id = m.condition_id, msg = { type = "price", market_id = m.condition_id,
          buy = q, sell = string.format("%.4f", 1 - p), source = "candles",
          outcomes = core.array { { label = (m.outcomes or {})[1] or "Yes", price = q },
                                  { label = (m.outcomes or {})[2] or "No", price = string.format("%.4f", 1 - p) } } } }
      end
    end
  end
  table.sort(events, function(a, b) if a.t ~= b.t then return a.t < b.t end return a.id < b.id end)
  local t0 = events[1] and events[1].t or os.time()
  write { type = "meta", version = 1, source = client.base_url, started_at = t0, from_candles = interval }
  for _, m in ipairs(ms) do write { type = "market", t = t0, market = m } end
  for _, e in ipairs(events) do write { type = "price", t = e.t, msg = e.msg } end
  return #events
end

function _M.main(args)
  local spec = { ["base-url"] = "string", markets = "string", hot = "number", duration = "number",
    books = "number", o = "string", output = "string", ["from-candles"] = "flag", interval = "string",
    ["price-books"] = "string", spot = "string", windows = "number",
    days = "number", seed = "number", tick = "number" }
  local a2 = {}
  for i, v in ipairs(args) do a2[i] = (v == "-o") and "--o" or v end
  local o, pos = require("polysim.cli").parse_options(a2, 2, spec)
  if not o then return die(pos) end
  if o.help then io.stdout:write(USAGE); return 0 end
  if #pos > 0 then return die("takes no positional arguments") end
  local mode = o["price-books"] or "all"
  if mode ~= "all" and mode ~= "moved" and mode ~= "off" then return die("--price-books must be all, moved or off") end
  local out = o.o or o.output
  if not out then return die("needs -o FILE") end
  local write, f = writer(out)
  if not write then return die(out .. ": " .. tostring(f)) end
  local api_key = os.getenv "POLYSIM_API_KEY"
  if api_key == "" then api_key = nil end
  local base_url, srv = o["base-url"], nil
  if not base_url and not api_key then
    local err
    srv, err = require("polysim.serve").start { port = 0, seed = math.tointeger(o.seed) or 1,
      tick = o.tick or 0.5 }
    if not srv then return die("cannot start the local exchange: " .. tostring(err)) end
    base_url, api_key = srv.base_url, srv.api_key
  end
  local client = require("polysim").new { api_key = api_key, base_url = base_url }
  local now = log.wallclock
  local status = 0
  local done, stopping = false, false
  local wq
  ploop.spawn(function()
    local ok, err = pcall(function()
      if o["from-candles"] then
        local n, e = from_candles(client, o, write)
        if not n then error(e, 0) end
        io.stderr:write("polysim record: ", n, " candle prices written to ", out, "\n")
        done = true
        return
      end
      local list, e = choose(client, o)
      if not list then error(e, 0) end
      write { type = "meta", version = 1, source = client.base_url, started_at = now() }
      local ids = {}
      for _, m in ipairs(list) do
        write { type = "market", t = now(), market = m }
        ids[#ids + 1] = m.condition_id
      end
      local syms = {}
      for sym in (o.spot or ""):gmatch("[^,%s]+") do syms[#syms + 1] = sym:upper() end
      local wins = {}
      for _, sym in ipairs(syms) do
        local rows, e2 = client:updown_windows { asset = sym, limit = math.tointeger(o.windows) or 2 }
        if not rows then error("Up/Down windows of " .. sym .. ": " .. tostring(e2), 0) end
        for _, w in ipairs(rows) do
          write { type = "updown", t = now(), window = w }
          wins[w.condition_id] = true
          list[#list + 1] = { condition_id = w.condition_id, outcomes = { "Up", "Down" } }
          ids[#ids + 1] = w.condition_id
        end
      end
      for _, m in ipairs(list) do write(book_record(client, m, now())) end
      wq = writer_queue(client, list, write, mode, function() return done end)
      local prices
      local function subscribe(id) if prices and not done then prices:subscribe { id } end end
      -- the row of a window as GET /markets/updown lists it (its token ids among its fields)
      local function follow(w)
        local rows = client:updown_windows { asset = w.asset, interval = w.interval, limit = 2 }
        for _, r in ipairs(rows or {}) do if r.condition_id == w.condition_id then return r end end
        return w
      end
      if #syms > 0 then
        client:spot_stream { crypto = syms,
          on_spot = function(tick)
            if done or stopping then return end
            wq.queue { type = "spot", t = now(), symbol = tick.symbol, price = tick.price,
              timestamp = tick.timestamp, source = tick.source }
          end,
          on_window = function(msg)
            if done or stopping then return end
            local id = msg.market_id or msg.condition_id
            local t = now()
            if not wins[id] then
              -- a window that opened meanwhile: the writer reads its row, writes it, and
              -- subscribes its prices (its message is the fallback for the metadata)
              wins[id] = true
              wq.queue { type = "updown", t = t, follow = follow, subscribe = subscribe,
                window = { condition_id = id, asset = msg.asset, interval = msg.interval,
                  start_date = msg.start_date, end_date = msg.end_date, price_to_beat = msg.price_to_beat } }
            end
            wq.queue { type = "window", t = t, msg = msg }
            if msg.event == "settle" then
              -- nothing trades after the payout: the window leaves the books and the stream
              wq.queue { forget = id, t = t }
              if prices then prices:unsubscribe { id } end
            end
          end }
      end
      prices = client:prices_stream { markets = ids, on_price = function(msg)
        if not done and not stopping then wq.queue { type = "price", t = now(), msg = msg } end
      end }
      local every = o.books or 5
      if every > 0 then
        ploop.every(every, function()
          if not done and not stopping then wq.queue { snapshot = true, t = now() } end
        end)
      end
    end)
    if not ok then
      io.stderr:write("polysim record: ", tostring(err), "\n")
      status, done = 1, true
    end
  end)
  local stop
  require("polysim.cli").watch_signals(function(name) stop = name end)
  local t_end = o.duration and (core.monotime() + o.duration)
  while not done and not stop and not (t_end and core.monotime() >= t_end) do ploop.core:step(0.2) end
  -- the prices still waiting for their books get them (a second at most), then the rest is
  -- written as it is
  stopping = true
  local grace = core.monotime() + 1
  while wq and not done and wq.pending() and core.monotime() < grace do ploop.core:step(0.05) end
  done = true
  if wq then wq.flush() end
  f:close()
  if srv then srv:close() end
  return status
end

return _M
