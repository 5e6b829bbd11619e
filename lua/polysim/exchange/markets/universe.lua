-- Building the universe of the local exchange: seeded synthetic markets with 30 days of
-- pre-history, events grouping them, and the markets of a --markets data file (its shape:
-- polysim.exchange.markets' header).
local fixed = require "polysim.exchange.fixed"
local rngm = require "polysim.exchange.rng"
local util = require "polysim.exchange.util"
local book = require "polysim.exchange.book"
local base = require "polysim.exchange.markets.base"
local text = require "polysim.exchange.markets.text"

local _M = {}

local ONE = fixed.P
local null = util.null
local floor = math.floor
local DAY = base.DAY
local FEE_BY_CATEGORY = base.FEE_BY_CATEGORY
local slugify, token_id, register, new_market = base.slugify, base.token_id, base.register, base.new_market
local set_binary_prices, sample = base.set_binary_prices, base.sample
local binary_question, multi_question = text.binary_question, text.multi_question

-- Pre-history: hourly samples for 30 days, then minute samples for the last 6 hours,
-- walking backwards from the current price.
local function prehistory(m, r, now)
  local np = m.binary and 1 or #m.outcomes
  local cur = {}
  for i = 1, np do cur[i] = m.outcomes[i].price end
  local pts = {}
  local t = floor(now / 60) * 60
  local function step(scale)
    for i = 1, np do
      local v = cur[i] + (r:range(-scale, scale)) * m.tick
      if v < m.tick then v = m.tick elseif v > ONE - m.tick then v = ONE - m.tick end
      cur[i] = v
    end
  end
  for k = 0, 359 do
    local snap = {}
    for i = 1, np do snap[i] = cur[i] end
    pts[#pts + 1] = { t - k * 60, snap }
    if r:chance(1, 4) then step(1) end
  end
  local th = floor((t - 360 * 60) / 3600) * 3600
  for k = 0, 30 * 24 - 1 do
    local snap = {}
    for i = 1, np do snap[i] = cur[i] end
    pts[#pts + 1] = { th - k * 3600, snap }
    step(2)
  end
  for k = #pts, 1, -1 do
    local pt = pts[k]
    local n = #m.hist_t + 1
    m.hist_t[n] = pt[1]
    for i = 1, np do m.hist_p[i][n] = pt[2][i] end
  end
end

local function synth_market(r, k, now, opts)
  local cats = base.CATEGORIES
  local cat
  if k == 1 then cat = cats[1] else cat = cats[(k - 1) % #cats + 1] end
  local year = tonumber(os.date("!%Y", floor(now))) + r:range(0, 1)
  local multi = k > 6 and k % 7 == 3
  local question, labels
  if multi then
    question, labels = multi_question(r, cat.name, year)
  else
    question, labels = binary_question(r, cat.name, year), { "Yes", "No" }
  end
  local tick = (k % 5 == 4) and 10 or 100
  local outcomes = {}
  for i, label in ipairs(labels) do
    outcomes[i] = { label = label, token_id = token_id(r), price = 0, bids = {}, asks = {} }
  end
  -- status mix: most open; a few closed, resolved or inactive (never the first ten)
  local status = "open"
  if k > 10 then
    local s = k % 13
    if s == 5 then status = "closed" elseif s == 8 then status = "resolved"
    elseif s == 11 then status = "inactive" end
  end
  local end_date
  if status == "open" or status == "inactive" then
    end_date = floor(now / DAY) * DAY + DAY * r:range(7, 400)
  else
    end_date = floor(now / DAY) * DAY - DAY * r:range(1, 60)
  end
  local m = new_market {
    condition_id = "0x" .. r:hex(64), slug = slugify(question), question = question,
    category = cat.name, fee_bps = cat.fee_bps, tick = tick, outcomes = outcomes,
    active = status ~= "inactive", closed = status == "closed" or status == "resolved",
    end_date = end_date, is_hot = k <= 8 or r:chance(1, 8),
    volume = r:range(1000, 5000000) * fixed.M + r:below(100) * fixed.CENT,
    image_url = "https://polymarket-upload.s3.us-east-2.amazonaws.com/" .. slugify(question) .. ".png",
    vol = r:range(15, 60), created_at = floor(now) - DAY * r:range(10, 200),
  }
  if multi then
    local left, n = ONE, #outcomes
    for i = 1, n do
      local share = i == n and left or (left * r:range(20, 60) // 100) // tick * tick
      if share < tick then share = tick end
      if share > ONE - tick then share = ONE - tick end
      outcomes[i].price = share
      left = left - share
      if left < tick then left = tick end
    end
  else
    set_binary_prices(m, r:range(5, 95) * 100 // tick * tick)
  end
  if status == "resolved" then
    local win = r:range(1, #outcomes)
    m.resolved_outcome = outcomes[win].label
    for i, o in ipairs(outcomes) do o.price = i == win and ONE or 0 end
  end
  if status ~= "open" then m.frozen = true end
  m.updated_us = util.to_us(now)
  if not opts.no_history then prehistory(m, r, now) end
  base.rebuild_books(m, r)
  return m
end

-- Groups markets into events: three consecutive markets of the same category share one.
local function build_events(U, r)
  local cur
  for _, m in ipairs(U.list) do
    if not m.event_id then
      if not cur or cur.category ~= m.category or #cur.markets >= 3 or #m.outcomes > 2 then
        local title = #m.outcomes > 2 and m.question or
          (m.category:sub(1, 1):upper() .. m.category:sub(2) .. " outlook " .. os.date("!%Y"))
        cur = { id = tostring(r:range(10000, 99999)), title = title, category = m.category, markets = {} }
        while U.events_by_id[cur.id] do cur.id = tostring(r:range(10000, 99999)) end
        U.events[#U.events + 1] = cur
        U.events_by_id[cur.id] = cur
      end
      m.event_id, m.event_title = cur.id, cur.title
      cur.markets[#cur.markets + 1] = m
    else
      local ev = U.events_by_id[m.event_id]
      if not ev then
        ev = { id = m.event_id, title = m.event_title or m.question, category = m.category, markets = {} }
        U.events[#U.events + 1] = ev
        U.events_by_id[ev.id] = ev
      end
      m.event_title = m.event_title or ev.title
      ev.markets[#ev.markets + 1] = m
    end
  end
end

-- Data file import -----------------------------------------------------------------------
local function file_market(r, spec, k, now, cat_fees)
  local where = "markets[" .. k .. "]"
  if type(spec) ~= "table" then return nil, where .. " must be an object" end
  local function get(name) local v = spec[name]; if v == null then return nil end; return v end
  local question = get "question"
  if type(question) ~= "string" or question == "" then return nil, where .. ".question is required" end
  local cid = get "condition_id" or ("0x" .. r:hex(64))
  if type(cid) ~= "string" then return nil, where .. ".condition_id must be a string" end
  local category = get "category" or "other"
  local fee_bps = cat_fees[category] or FEE_BY_CATEGORY[category] or 0
  if get "fee_rate" ~= nil then
    fee_bps = fixed.coerce(get "fee_rate", 4)
    if not fee_bps or fee_bps < 0 or fee_bps > ONE then return nil, where .. ".fee_rate invalid" end
  end
  local tick = 100
  if get "tick_size" ~= nil then
    tick = fixed.coerce(get "tick_size", 4)
    if not tick or tick <= 0 or tick >= ONE then return nil, where .. ".tick_size invalid" end
  end
  local outs = get "outcomes" or { "Yes", "No" }
  if type(outs) ~= "table" or #outs < 2 then return nil, where .. ".outcomes needs two or more" end
  local prices = get "prices"
  local outcomes = {}
  for i, o in ipairs(outs) do
    local label, tok, price
    if type(o) == "string" then label = o
    elseif type(o) == "table" then
      label = o.label; tok = o.token_id; price = o.price
      if tok == null then tok = nil end
      if price == null then price = nil end
    end
    if type(label) ~= "string" then return nil, where .. ".outcomes[" .. i .. "] needs a label" end
    if type(prices) == "table" and prices[i] ~= nil then price = prices[i] end
    local p
    if price ~= nil then
      p = fixed.coerce(price, 4)
      if not p or p < 0 or p > ONE then return nil, where .. ".outcomes[" .. i .. "] price invalid" end
    end
    outcomes[i] = { label = label, token_id = tok and tostring(tok) or token_id(r), price = p,
                    bids = {}, asks = {} }
  end
  local n = #outcomes
  for i, o in ipairs(outcomes) do
    if not o.price then
      if n == 2 and outcomes[3 - i].price then o.price = ONE - outcomes[3 - i].price
      else o.price = (ONE // n) // tick * tick end
    end
  end
  local end_date = get "end_date"
  if end_date ~= nil then
    end_date = base.parse_time(end_date)
    if not end_date then return nil, where .. ".end_date invalid" end
  else
    end_date = floor(now / DAY) * DAY + 90 * DAY
  end
  local volume = 0
  if get "volume" ~= nil then volume = fixed.coerce(get "volume", 8) or 0 end
  local resolved = get "resolved_outcome"
  local m = new_market {
    condition_id = cid, slug = get "slug" or slugify(question), question = question,
    category = category, fee_bps = fee_bps, tick = tick, outcomes = outcomes,
    active = get "active" ~= false, closed = get "closed" == true or resolved ~= nil,
    resolved_outcome = resolved, end_date = end_date, is_hot = get "is_hot" == true,
    volume = volume, event_id = get "event_id" and tostring(get "event_id"),
    event_title = get "event_title", image_url = get "image_url",
    created_at = floor(now) - 30 * DAY, updated_us = util.to_us(now),
  }
  local books = get "books"
  m.frozen = get "frozen" == true or (books ~= nil and get "frozen" ~= false)
  if resolved ~= nil then m.frozen = true end
  return m, books
end

local function apply_books(m, books, where)
  if type(books) ~= "table" then return nil, where .. ".books must be an object" end
  if not m.file_books then
    -- the first book given for a market fixes all its books: outcomes not listed are empty
    m.file_books = true
    for _, o in ipairs(m.outcomes) do o.bids, o.asks, o.pinned = {}, {}, true end
  end
  for key, b in pairs(books) do
    local idx
    for i, o in ipairs(m.outcomes) do
      if o.label == key or o.token_id == key then idx = i end
    end
    if not idx then return nil, where .. ".books: unknown outcome " .. tostring(key) end
    if type(b) ~= "table" then return nil, where .. ".books." .. key .. " must be an object" end
    local bids, e1 = book.parse_levels(b.bids, "bids")
    if not bids then return nil, where .. ".books." .. key .. ": " .. e1 end
    local asks, e2 = book.parse_levels(b.asks, "asks")
    if not asks then return nil, where .. ".books." .. key .. ": " .. e2 end
    m.outcomes[idx].bids, m.outcomes[idx].asks = bids, asks
    m.outcomes[idx].pinned = true
  end
  return true
end

--- new(opts): the universe. opts: seed, now, data (decoded markets file), count.
--- Returns U or nil, message.
function _M.new(opts)
  local root = rngm.new(opts.seed or 1)
  local r = root:fork("universe")
  local U = {
    list = {}, all = {}, by_id = {}, by_slug = {}, by_token = {}, events = {}, events_by_id = {},
    walk_rng = root:fork("walk"), book_rng = root:fork("books"), seed = opts.seed or 1,
  }
  local now = opts.now
  local data = opts.data
  local count = opts.count or 40
  if data ~= nil then
    if type(data) ~= "table" then return nil, "markets data must be an object" end
    count = math.tointeger(data.generate) or 0
    local cat_fees = {}
    if type(data.categories) == "table" then
      for name, rate in pairs(data.categories) do
        local bps = fixed.coerce(rate, 4)
        if not bps then return nil, "categories." .. tostring(name) .. " invalid rate" end
        cat_fees[name] = bps
      end
    end
    local list = data.markets
    if list ~= nil and list ~= null and type(list) ~= "table" then return nil, "markets must be a list" end
    for k, spec in ipairs(list or {}) do
      local m, books = file_market(r, spec, k, now, cat_fees)
      if not m then return nil, books end
      if books ~= nil then
        local ok, err = apply_books(m, books, "markets[" .. k .. "]")
        if not ok then return nil, err end
      end
      base.rebuild_books(m, U.book_rng)
      sample(m, now)
      local ok, err = register(U, m)
      if not ok then return nil, err end
    end
    if type(data.books) == "table" then
      for tok, b in pairs(data.books) do
        local hit = U.by_token[tok]
        if not hit then return nil, "books: unknown token_id " .. tostring(tok) end
        local ok, err = apply_books(hit[1], { [tok] = b }, "books")
        if not ok then return nil, err end
        hit[1].frozen = true
      end
    end
  end
  for k = 1, count do
    local m = synth_market(r, k, now, opts)
    local ok, err = register(U, m)
    if not ok then return nil, err end
  end
  build_events(U, r)
  return U
end

return _M
