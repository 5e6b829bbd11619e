-- The market record of the local exchange (its fields: polysim.exchange.markets' header):
-- categories and fees, dates, construction and registration in a universe, synthetic books
-- around the price, minute samples, and the status and outcome/token lookups.
local fixed = require "polysim.exchange.fixed"

local _M = {}

local ONE = fixed.P
local floor = math.floor

local DAY = 86400
_M.DAY = DAY

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

_M.FEE_BY_CATEGORY = FEE_BY_CATEGORY

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

local function slugify(s)
  local slug = s:lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  return slug:sub(1, 80)
end

-- Construction -------------------------------------------------------------------------

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
-- A level's size is r:range(10, 600) * 10000 + r:below(100) * 100; the two draws are
-- r:below's xoshiro256** step written out on the generator's state held in locals (the same
-- numbers in the same order: perf, issue 12, a backtest's lazy book rebuilds were ~23% of
-- examples/mean_reversion's VM instructions, most of them the calls and the state's loads
-- and stores).
function _M.rebuild_book(m, idx, r)
  local o = m.outcomes[idx]
  local asks, bids = {}, {}
  o.bids, o.asks = bids, asks
  if m.resolved_outcome then return end
  local t = m.tick
  local p = o.price
  local half = t * r:range(1, 2)
  local a, b = p + half, p - half
  local na, nb = 0, 0
  local s0, s1, s2, s3 = r[1], r[2], r[3], r[4]
  for _ = 1, m.depth do
    for side = 1, 2 do
      if side == 1 and a < ONE or side == 2 and b > 0 then
        local x = s1 * 5
        local hi = ((x << 7) | (x >> 57)) * 9
        local sh = s1 << 17
        s2 = s2 ~ s0; s3 = s3 ~ s1; s1 = s1 ~ s2; s0 = s0 ~ s3
        s2 = s2 ~ sh; s3 = (s3 << 45) | (s3 >> 19)
        x = s1 * 5
        local lo = ((x << 7) | (x >> 57)) * 9
        sh = s1 << 17
        s2 = s2 ~ s0; s3 = s3 ~ s1; s1 = s1 ~ s2; s0 = s0 ~ s3
        s2 = s2 ~ sh; s3 = (s3 << 45) | (s3 >> 19)
        local size = (10 + (hi >> 11) % 591) * 10000 + (lo >> 11) % 100 * 100
        if side == 1 then na = na + 1; asks[na] = { a, size } else nb = nb + 1; bids[nb] = { b, size } end
      end
    end
    a, b = a + t, b - t
  end
  r[1], r[2], r[3], r[4] = s0, s1, s2, s3
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

local function token_id(r) return r:digits(r:range(76, 78)) end

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

_M.slugify, _M.register, _M.new_market, _M.set_binary_prices, _M.token_id =
  slugify, register, new_market, set_binary_prices, token_id

return _M
