-- The market universe of the local exchange: seeded synthetic markets (or a --markets data
-- file), prices that random-walk on tick, books rebuilt around the price, minute price
-- history for candles, events and the short-horizon crypto up/down windows.
--
-- A market (internal):
--   condition_id, slug, question, category, fee_bps, tick (price units), depth
--   outcomes[i] = { label, token_id, price (1e-4), bids = {{p,q}...}, asks = {{p,q}...} }
--   binary (two outcomes, complement merge), active, closed, resolved_outcome (label|nil),
--   end_date (unix s), is_hot, volume (money units), event_id, event_title, image_url,
--   frozen (no walk, no book rebuild), vol (move chance per step, percent),
--   hist_t / hist_p[i] (minute samples), updated_us, updown ({asset, interval, start}|nil)
--
-- The --markets file (decoded JSON; every field optional unless marked):
--   {
--     "generate": 0,                 -- also add N seeded synthetic markets (default 0)
--     "categories": {"politics": "0.04", ...},   -- taker fee rate per category
--     "markets": [ {
--         "question": "Will ...?",   -- required
--         "condition_id": "0x<64 hex>", "slug": "...", "category": "politics",
--         "fee_rate": "0.04",        -- overrides the category's rate
--         "outcomes": ["Yes","No"] or [{"label":"Yes","token_id":"...","price":"0.65"}, ...],
--         "prices": ["0.65","0.35"], -- parallel to outcomes
--         "tick_size": "0.01", "end_date": "2026-12-31T00:00:00Z" (or unix seconds),
--         "active": true, "closed": false, "resolved_outcome": null, "is_hot": false,
--         "event_id": "...", "event_title": "...", "image_url": "...", "volume": "1234.56",
--         "frozen": false,           -- default true when "books" are given
--         "books": {"Yes": {"bids": [["0.64","100"], {"price":"0.63","size":"50"}],
--                           "asks": [["0.66","80"]]}, "No": {...}}   -- keyed by label or token id;
--                           -- outcomes left out have empty books; given books never change on
--                           -- tick (the market is frozen unless "frozen": false)
--     } ],
--     "books": {"<token_id>": {"bids": [...], "asks": [...]}}   -- same, keyed by token id
--   }
local fixed = require "polysim.exchange.fixed"
local rngm = require "polysim.exchange.rng"
local util = require "polysim.exchange.util"
local book = require "polysim.exchange.book"
local sha256 = require "polysim.exchange.sha256"

local _M = {}

local ONE = fixed.P
local array, null, opt = util.array, util.null, util.opt
local fmt_price, fmt_money = fixed.price, fixed.money
local floor = math.floor

local DAY = 86400

-- Categories and their taker fee rates (basis points). politics is exactly 4%.
_M.CATEGORIES = {
  { name = "politics", fee_bps = 400 },
  { name = "sports", fee_bps = 300 },
  { name = "crypto", fee_bps = 200 },
  { name = "economics", fee_bps = 100 },
  { name = "geopolitics", fee_bps = 250 },
  { name = "culture", fee_bps = 0 },
  { name = "science", fee_bps = 0 },
}
local FEE_BY_CATEGORY = {}
for _, c in ipairs(_M.CATEGORIES) do FEE_BY_CATEGORY[c.name] = c.fee_bps end

-- Date helpers (no os.time: civil-from-days arithmetic) ---------------------------------
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- parse_time(v): ISO-8601 UTC string or unix seconds -> integer seconds, or nil.
function _M.parse_time(v)
  if math.type(v) == "integer" then return v end
  if type(v) == "number" then return math.tointeger(floor(v)) end
  if type(v) ~= "string" then return nil end
  local y, mo, d, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, s = 0, 0, 0
  if rest ~= "" then
    local hh, mm, ss, tail = rest:match("^[T ](%d%d):(%d%d):?(%d*)(.*)$")
    if not hh then return nil end
    h, mi, s = tonumber(hh), tonumber(mm), tonumber(ss) or 0
    local frac = tail:match("^%.%d+") or ""
    tail = tail:sub(#frac + 1)
    if tail ~= "" and tail ~= "Z" and tail ~= "+00:00" then return nil end
  end
  return days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * DAY + h * 3600 + mi * 60 + s
end

-- Text for the synthetic universe --------------------------------------------------------
local PEOPLE = { "Alex Moreno", "Dana Whitfield", "Priya Raman", "Jonas Berg", "Marisol Vega",
  "Tom Okafor", "Hana Sato", "Luis Ferreira", "Grace Lindqvist", "Omar Haddad" }
local PLACES = { "Ohio", "Arizona", "Ontario", "Bavaria", "Victoria", "Catalonia", "Georgia",
  "Nevada", "Quebec", "Lombardy" }
local OFFICES = { "governor", "senate", "mayoral", "presidential", "parliamentary" }
local COUNTRIES = { "France", "Germany", "Japan", "Brazil", "Canada", "India", "Mexico",
  "Italy", "Spain", "Poland", "Chile", "Kenya" }
local TEAMS = { "Lions", "Falcons", "Rovers", "Comets", "Mariners", "Titans", "Wolves",
  "Hawks", "Pirates", "Giants", "Sharks", "Bulls" }
local LEAGUES = { "NBA", "NFL", "Premier League", "Serie A", "NHL", "MLS" }
local MONTHS = { "January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December" }
local COINS = { { "Bitcoin", 120000 }, { "Ethereum", 5000 }, { "Solana", 300 }, { "XRP", 4 } }
local FILMS = { "Starfall", "The Quiet Harbor", "Neon Orchard", "Paper Kings", "Blue Meridian" }
local ARTISTS = { "Lena Cruz", "The Midnight Vale", "Kofi Mensah", "Ivy Rhodes" }

local function binary_question(r, cat, year)
  local y = tostring(year)
  if cat == "politics" then
    local k = r:below(3)
    if k == 0 then
      return ("Will %s win the %s %s %s election?"):format(r:pick(PEOPLE), y, r:pick(PLACES), r:pick(OFFICES))
    elseif k == 1 then
      return ("Will %s hold a snap election before %s %s?"):format(r:pick(COUNTRIES), r:pick(MONTHS), y)
    end
    return ("Will %s's approval rating be above %d%% on %s 1, %s?"):format(r:pick(PEOPLE),
      r:range(35, 55), r:pick(MONTHS), y)
  elseif cat == "sports" then
    return ("Will the %s %s win the %s %s title?"):format(r:pick(PLACES), r:pick(TEAMS), y, r:pick(LEAGUES))
  elseif cat == "crypto" then
    local coin = r:pick(COINS)
    local level = coin[2] * r:range(8, 14) // 10
    return ("Will %s close above $%d on %s %d, %s?"):format(coin[1], level, r:pick(MONTHS), r:range(1, 28), y)
  elseif cat == "economics" then
    if r:chance(1, 2) then
      return ("Will the Fed cut rates at the %s %s meeting?"):format(r:pick(MONTHS), y)
    end
    return ("Will US CPI inflation exceed %d.%d%% in %s %s?"):format(r:range(2, 4), r:below(10), r:pick(MONTHS), y)
  elseif cat == "geopolitics" then
    local a, b = r:pick(COUNTRIES), r:pick(COUNTRIES)
    if a == b then b = "its neighbours" end
    return ("Will %s and %s sign a trade agreement by %s %s?"):format(a, b, r:pick(MONTHS), y)
  elseif cat == "culture" then
    if r:chance(1, 2) then
      return ("Will \"%s\" gross over $%dM on its opening weekend?"):format(r:pick(FILMS), r:range(4, 20) * 10)
    end
    return ("Will %s release a new album in %s?"):format(r:pick(ARTISTS), y)
  end
  return ("Will a crewed mission land on the Moon before %s %s?"):format(r:pick(MONTHS), y)
end

local function multi_question(r, cat, year)
  local y = tostring(year)
  if cat == "sports" then
    local league = r:pick(LEAGUES)
    local labels, seen = {}, {}
    while #labels < r:range(4, 5) do
      local t = r:pick(TEAMS)
      if not seen[t] then seen[t] = true; labels[#labels + 1] = t end
    end
    return ("Who will win the %s %s championship?"):format(y, league), labels
  elseif cat == "economics" then
    return ("How many Fed rate cuts in %s?"):format(y), { "0", "1", "2", "3 or more" }
  elseif cat == "culture" then
    return ("Which film will win Best Picture %s?"):format(y), { FILMS[1], FILMS[2], FILMS[3], FILMS[4] }
  end
  local labels, seen = {}, {}
  while #labels < 4 do
    local p = r:pick(PEOPLE)
    if not seen[p] then seen[p] = true; labels[#labels + 1] = p end
  end
  return ("Who will win the %s %s %s election?"):format(y, r:pick(PLACES), r:pick(OFFICES)), labels
end

local function slugify(s)
  local slug = s:lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  return slug:sub(1, 80)
end

-- Universe construction ------------------------------------------------------------------

local function register(U, m)
  if U.by_id[m.condition_id] then return nil, "duplicate condition_id " .. m.condition_id end
  local slug, n = m.slug, 1
  while U.by_slug[slug] do n = n + 1; slug = m.slug .. "-" .. n end
  m.slug = slug
  U.by_id[m.condition_id] = m
  U.by_slug[slug] = m
  for i, o in ipairs(m.outcomes) do
    if U.by_token[o.token_id] then return nil, "duplicate token_id " .. o.token_id end
    U.by_token[o.token_id] = { m, i }
  end
  if not m.updown then U.list[#U.list + 1] = m end
  U.all[#U.all + 1] = m
  return true
end

local function new_market(fields)
  local m = {
    condition_id = fields.condition_id, slug = fields.slug, question = fields.question,
    category = fields.category or "other", fee_bps = fields.fee_bps or 0,
    tick = fields.tick or 100, depth = fields.depth or 8,
    outcomes = fields.outcomes, binary = #fields.outcomes == 2,
    active = fields.active ~= false, closed = fields.closed or false,
    resolved_outcome = fields.resolved_outcome, end_date = fields.end_date,
    is_hot = fields.is_hot or false, volume = fields.volume or 0,
    event_id = fields.event_id, event_title = fields.event_title,
    image_url = fields.image_url, frozen = fields.frozen or false, vol = fields.vol or 30,
    hist_t = {}, hist_p = {}, updated_us = fields.updated_us or 0,
    updown = fields.updown, description = fields.description,
    resting = {}, created_at = fields.created_at,
  }
  for i = 1, #m.outcomes do m.hist_p[i] = {} end
  return m
end

-- Keeps outcome prices consistent: binary No = 1 - Yes.
local function set_binary_prices(m, p)
  m.outcomes[1].price = p
  m.outcomes[2].price = ONE - p
end

--- rebuild_book(m, idx, r): a fresh synthetic book around outcome idx's price.
function _M.rebuild_book(m, idx, r)
  local o = m.outcomes[idx]
  o.bids, o.asks = {}, {}
  if m.resolved_outcome then return end
  local t = m.tick
  local p = o.price
  local half = t * r:range(1, 2)
  local a, b = p + half, p - half
  for _ = 1, m.depth do
    if a < ONE then o.asks[#o.asks + 1] = { a, r:range(10, 600) * 10000 + r:below(100) * 100 } end
    if b > 0 then o.bids[#o.bids + 1] = { b, r:range(10, 600) * 10000 + r:below(100) * 100 } end
    a, b = a + t, b - t
  end
end

function _M.rebuild_books(m, r)
  for i = 1, #m.outcomes do
    if not m.outcomes[i].pinned then _M.rebuild_book(m, i, r) end
  end
end

-- Records a minute sample of the current prices.
local function sample(m, now)
  local t = floor(now / 60) * 60
  local ht = m.hist_t
  local n = #ht
  if n > 0 and ht[n] > t then return end
  if n == 0 or ht[n] < t then n = n + 1; ht[n] = t end
  local np = m.binary and 1 or #m.outcomes
  for i = 1, np do m.hist_p[i][n] = m.outcomes[i].price end
  if n > 20000 then                    -- keep memory bounded: drop the oldest half
    local drop = n // 2
    table.move(ht, drop + 1, n, 1); for k = n - drop + 1, n do ht[k] = nil end
    for i = 1, np do
      local hp = m.hist_p[i]
      table.move(hp, drop + 1, n, 1); for k = n - drop + 1, n do hp[k] = nil end
    end
  end
end
_M.sample = sample

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

local function token_id(r) return r:digits(r:range(76, 78)) end

local function synth_market(r, k, now, opts)
  local cats = _M.CATEGORIES
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
  _M.rebuild_books(m, r)
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
    end_date = _M.parse_time(end_date)
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
      _M.rebuild_books(m, U.book_rng)
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

-- Status ---------------------------------------------------------------------------------

--- state(m, now): "open", "closed" (closed, inactive or past end_date) or "resolved".
function _M.state(m, now)
  if m.resolved_outcome then return "resolved" end
  if m.closed or not m.active or (m.end_date and now >= m.end_date) then return "closed" end
  return "open"
end

--- outcome_index(m, label): index of the outcome named label (case-insensitive) or with that
--- token id; nil when unknown.
function _M.outcome_index(m, label)
  if type(label) ~= "string" then return nil end
  local ll = label:lower()
  for i, o in ipairs(m.outcomes) do
    if o.label:lower() == ll or o.token_id == label then return i end
  end
  return nil
end

--- resolve_token(U, tok): market, outcome index for a CLOB token id: a real outcome-token
--- id, a bare condition id (its first outcome) or the colon form "condition_id:NO" /
--- ":UP" / ":DOWN" (polysim_sdk/_shared.py _split_token, polysim_clob_client/client.py
--- _resolve_token / _book_for_token). nil for anything else.
function _M.resolve_token(U, tok)
  if type(tok) ~= "string" then return nil end
  local hit = U.by_token[tok]
  if hit then return hit[1], hit[2] end
  local m = U.by_id[tok]
  if m then return m, 1 end
  local cid, label = tok:match("^(.+):([^:]+)$")
  m = cid and U.by_id[cid]
  if m then
    local idx = _M.outcome_index(m, label)
    if idx then return m, idx end
  end
  return nil
end

-- Price walk -----------------------------------------------------------------------------

local function clamp(v, t)
  if v < t then return t elseif v > ONE - t then return ONE - t end
  return v
end

--- walk(U, dt, now): advances every open, non-frozen market by a random walk of dt seconds
--- and rebuilds unpinned books. Returns the list of markets whose price changed.
--- resolve_updown(m, U): resolves an up/down window whose end has passed: on spot against the
--- strike when the window has a resolver (windows.lua), else "Up" when the Up price is at
--- least 0.50; books empty, prices 1 / 0; queued on U.unsettled for settlement (windows.lua).
function _M.resolve_updown(m, U)
  local fn = m.updown.resolver
  m.resolved_outcome = (fn and fn(m)) or (m.outcomes[1].price >= 5000 and "Up" or "Down")
  m.frozen, m.closed = true, true
  if U and U.unsettled then U.unsettled[#U.unsettled + 1] = m end
  for _, o in ipairs(m.outcomes) do
    o.bids, o.asks = {}, {}
    o.price = o.label == m.resolved_outcome and ONE or 0
  end
end

function _M.walk(U, dt, now)
  local changed = {}
  local steps = dt > 0 and math.max(1, math.min(16, math.tointeger(floor(dt + 0.5)) or 1)) or 0
  local drop = false
  for _, m in ipairs(U.all) do
    -- up/down windows walk on their own streams, so that asking for them never shifts the
    -- price paths of the seeded universe
    local r, br = m.rng or U.walk_rng, m.rng or U.book_rng
    if m.updown and not m.resolved_outcome and now >= m.end_date then
      _M.resolve_updown(m, U)
      changed[#changed + 1] = m
    end
    if m.updown and m.resolved_outcome then drop = true end
    local moved = false
    if steps > 0 and not m.frozen and _M.state(m, now) == "open" then
      local t = m.tick
      if m.binary then
        local p = m.outcomes[1].price
        for _ = 1, steps do
          local x = r:below(200)
          if x < m.vol then p = p - t elseif x < 2 * m.vol then p = p + t end
        end
        p = clamp(p, t)
        if p ~= m.outcomes[1].price then set_binary_prices(m, p); moved = true end
      else
        for _, o in ipairs(m.outcomes) do
          local p = o.price
          for _ = 1, steps do
            local x = r:below(200)
            if x < m.vol then p = p - t elseif x < 2 * m.vol then p = p + t end
          end
          p = clamp(p, t)
          if p ~= o.price then o.price = p; moved = true end
        end
      end
    end
    if not m.resolved_outcome then _M.rebuild_books(m, br) end
    if moved then
      m.updated_us = util.to_us(now)
      sample(m, now)
      changed[#changed + 1] = m
    end
  end
  if drop then            -- settled windows stay findable by id but are no longer walked
    local keep = {}
    for _, m in ipairs(U.all) do
      if not (m.updown and m.resolved_outcome) then keep[#keep + 1] = m end
    end
    U.all = keep
  end
  return changed
end

--- set_price(m, idx, p, r): sets outcome idx's price (binary: the complement follows),
--- unpins and rebuilds the books.
function _M.set_price(m, idx, p, r, now)
  if m.binary then
    set_binary_prices(m, idx == 1 and p or ONE - p)
  else
    m.outcomes[idx].price = p
  end
  for _, o in ipairs(m.outcomes) do o.pinned = nil end
  _M.rebuild_books(m, r)
  m.updated_us = util.to_us(now)
  sample(m, now)
end

-- Views ----------------------------------------------------------------------------------

local function outcome_prices(m)
  local out = array()
  for i, o in ipairs(m.outcomes) do
    out[i] = { label = o.label, price = fmt_price(o.price), token_id = o.token_id }
  end
  return out
end

--- live_price(m): the LivePrice table.
function _M.live_price(m)
  local p1 = m.outcomes[1].price
  local sell = m.binary and m.outcomes[2].price or ONE - p1
  return {
    buy = fmt_price(p1), sell = fmt_price(sell), volume = fmt_money(m.volume),
    updated_at = util.iso_us(m.updated_us), source = "orderbook", outcomes = outcome_prices(m),
  }
end

local function labels(m)
  local l = array()
  for i, o in ipairs(m.outcomes) do l[i] = o.label end
  return l
end

--- summary(m, now): the MarketSummary table.
function _M.summary(m, now)
  local st = _M.state(m, now)
  local fee = fixed.format(m.fee_bps, 4, 2)
  return {
    id = m.condition_id, condition_id = m.condition_id, slug = m.slug, question = m.question,
    outcomes = labels(m),
    last_trade_price = m.last_trade and m.last_trade.price or null,
    active = m.active, closed = m.closed or st ~= "open", is_hot = m.is_hot,
    image_url = opt(m.image_url), live_price = _M.live_price(m),
    category = m.category, fee_rate = fee, end_date = m.end_date and util.iso(m.end_date) or null,
    event_group_id = opt(m.event_id), volume = fmt_money(m.volume),
    tokens = (function()
      local t = array()
      for i, o in ipairs(m.outcomes) do t[i] = { outcome = o.label, token_id = o.token_id } end
      return t
    end)(),
  }
end

--- detail(m, now): the MarketDetail table.
function _M.detail(m, now)
  local d = _M.summary(m, now)
  d.event_title = opt(m.event_title)
  d.resolved_outcome = opt(m.resolved_outcome)
  d.description = m.description or ("This market resolves according to its question: " .. m.question)
  d.tick_size = fmt_price(m.tick)
  d.status = _M.state(m, now)
  d.created_at = m.created_at and util.iso(m.created_at) or null
  d.neg_risk = not m.binary
  return d
end

--- ws_price(m): the WebSocket price message. Besides the LivePrice fields it carries the
--- last trade (last_trade, last_trade_size, last_trade_side) and per outcome best_bid /
--- best_ask / last_trade, as the live service's frames do (polysim_sdk/ws.py,
--- polysim_polymarket/streams/). emit_ts_ms is stamped when it is sent (serve.lua).
function _M.ws_price(m)
  local lp = _M.live_price(m)
  local bb, ba = book.best(m, 1)
  lp.type = "price"
  lp.market_id = m.condition_id
  lp.condition_id = m.condition_id
  lp.best_bid = bb and fmt_price(bb) or null
  lp.best_ask = ba and fmt_price(ba) or null
  local lt = m.last_trade
  lp.last_trade = lt and lt.price or null
  lp.last_trade_size = lt and fixed.qty(lt.qty) or null
  lp.last_trade_side = lt and lt.side or null
  lp.last_trade_outcome = lt and m.outcomes[lt.idx].label or null
  for i, o in ipairs(lp.outcomes) do
    local ob, oa = book.best(m, i)
    local olt = m.outcomes[i].last_trade
    o.best_bid = ob and fmt_price(ob) or null
    o.best_ask = oa and fmt_price(oa) or null
    o.last_trade = olt and olt.price or null
  end
  return lp
end

-- Candles --------------------------------------------------------------------------------
local INTERVALS = {
  ["1h"] = { 3600, 60 }, ["6h"] = { 21600, 300 }, ["1d"] = { DAY, 3600 },
  ["1w"] = { 7 * DAY, 6 * 3600 }, ["max"] = { nil, DAY },
}
_M.INTERVALS = INTERVALS

--- candles(m, idx, interval, now): array of {t, o, h, l, c}; nil for an unknown interval.
function _M.candles(m, idx, interval, now)
  local spec = INTERVALS[interval]
  if not spec then return nil end
  local range, bucket = spec[1], spec[2]
  local ht = m.hist_t
  local hp = m.hist_p[(m.binary and 1) or idx]
  local invert = m.binary and idx == 2
  local from = range and (now - range) or -math.huge
  -- binary search for the first sample >= from
  local lo, hi = 1, #ht + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if ht[mid] < from then lo = mid + 1 else hi = mid end
  end
  local out = array()
  local cur, o, h, l, c
  for k = lo, #ht do
    local v = hp[k]
    if invert then v = ONE - v end
    local b = ht[k] // bucket * bucket
    if b ~= cur then
      if cur then out[#out + 1] = { t = cur, o = fmt_price(o), h = fmt_price(h), l = fmt_price(l),
          c = fmt_price(c) } end
      cur, o, h, l, c = b, v, v, v, v
    else
      if v > h then h = v end
      if v < l then l = v end
      c = v
    end
  end
  if cur then out[#out + 1] = { t = cur, o = fmt_price(o), h = fmt_price(h), l = fmt_price(l), c = fmt_price(c) } end
  return out
end

-- Up/down windows --------------------------------------------------------------------------
_M.UPDOWN_ASSETS = { { "BTC", "Bitcoin" }, { "ETH", "Ethereum" }, { "SOL", "Solana" }, { "XRP", "XRP" } }
_M.UPDOWN_INTERVALS = { { "5M", 300 }, { "15M", 900 }, { "1H", 3600 }, { "4H", 14400 }, { "daily", DAY } }

--- updown_market(U, asset, name, interval, len, start, now): the window market, created on
--- first use (deterministic from the seed and the window).
function _M.updown_market(U, asset, name, interval, len, start, now)
  local key = U.seed .. "|updown|" .. asset .. "|" .. interval .. "|" .. start
  local cid = "0x" .. sha256.hex(key)
  local m = U.by_id[cid]
  if m then return m end
  local r = rngm.new(key)
  local q = ("%s Up or Down - %s window %s"):format(name, interval,
    os.date("!%Y-%m-%d %H:%M UTC", start))
  m = new_market {
    condition_id = cid, slug = slugify(("%s-updown-%s-%d"):format(asset, interval, start)),
    question = q, category = "crypto", fee_bps = FEE_BY_CATEGORY.crypto, tick = 100,
    outcomes = {
      { label = "Up", token_id = token_id(r), price = 5000, bids = {}, asks = {} },
      { label = "Down", token_id = token_id(r), price = 5000, bids = {}, asks = {} },
    },
    end_date = start + len, is_hot = true, volume = r:range(100, 50000) * fixed.M,
    vol = U.spot and 0 or 40, updated_us = util.to_us(now), created_at = start - len,
    updown = { asset = asset, interval = interval, start = start, len = len, U = U,
               resolver = U.window_resolver },
  }
  m.rng = r
  _M.rebuild_books(m, r)
  sample(m, now)
  register(U, m)
  if now >= start + len then _M.resolve_updown(m, U) end
  return m
end

--- updown_view(m, now): summary plus the window fields.
function _M.updown_view(m, now)
  local s = _M.summary(m, now)
  local w = m.updown
  s.asset, s.interval = w.asset, w.interval
  s.window_start, s.window_end = util.iso(w.start), util.iso(w.start + w.len)
  s.up_price = fmt_price(m.outcomes[1].price)
  s.down_price = fmt_price(m.outcomes[2].price)
  if now >= w.start + w.len and not m.resolved_outcome then _M.resolve_updown(m, w.U) end
  s.resolved_outcome = opt(m.resolved_outcome)
  return s
end

return _M
