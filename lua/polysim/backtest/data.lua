-- The recording format (`polysim record` writes it; anything may produce it): JSON Lines,
-- one record per line, append-only, times `t` in Unix seconds (receive time), never going
-- backwards. The file is read as a stream (never loaded whole).
--
--   {"type":"meta","version":1,"source":"http://...","started_at":T}            first line
--   {"type":"market","t":T,"market":{MarketDetail}}     metadata, before the market's events
--   {"type":"price","t":T,"msg":{WebSocket price message: market_id, buy, sell, outcomes...}}
--   {"type":"book","t":T,"market_id":ID,"books":{"Yes":{"bids":[[p,q],...],"asks":[...]},...}}
--   {"type":"updown","t":T,"window":{GET /markets/updown row: condition_id, asset, interval,
--       start_date, end_date, price_to_beat (null until it opens), ...}}   an Up/Down window,
--       before its events (its market: no market record)
--   {"type":"spot","t":T,"symbol":"BTC","price":97123.45,"timestamp":ISO,"source":...}
--   {"type":"window","t":T,"msg":{window lifecycle message: event open|close|resolve|settle,
--       market_id, asset, interval, price_to_beat, close_price, resolved_outcome, ...}}
--
-- A half-written last line (a crash, Ctrl-C) is skipped with a warning; any other bad line is
-- an error naming the file and line.
local core = require "polysim.core"

local error, tonumber, type = error, tonumber, type

local _M = { VERSION = 1 }

local function fail(path, n, msg) error({ data_error = path .. ":" .. n .. ": " .. msg }, 0) end
_M.fail = fail

-- The best bid/ask of a book side list ({{p, q}} or {{price=, size=}}).
local function best(list, want_max)
  local b
  for _, lv in ipairs(list) do
    local p = tonumber(type(lv) == "table" and (lv.price or lv[1]))
    if p and (not b or (want_max and p > b) or (not want_max and p < b)) then b = p end
  end
  return b
end

-- Checks one decoded record; `known` is the set of market ids seen in market records.
function _M.check(rec, path, n, known, last_t)
  if type(rec) ~= "table" then fail(path, n, "not a JSON object") end
  local kind = rec.type
  if kind == "meta" then return end
  local t = rec.t
  if type(t) ~= "number" then fail(path, n, "t (receive time, Unix seconds) is missing") end
  if last_t and t < last_t then
    fail(path, n, string.format("time goes backwards (%.6f after %.6f)", t, last_t))
  end
  if kind == "market" then
    local m = rec.market
    if type(m) ~= "table" or type(m.condition_id) ~= "string" then fail(path, n, "market record without market.condition_id") end
    known[m.condition_id] = true
  elseif kind == "price" then
    local msg = rec.msg
    if type(msg) ~= "table" or type(msg.market_id) ~= "string" then fail(path, n, "price record without msg.market_id") end
    if not known[msg.market_id] then fail(path, n, "unknown market " .. msg.market_id .. " (no market record before it)") end
  elseif kind == "book" then
    if not known[rec.market_id] then fail(path, n, "unknown market " .. tostring(rec.market_id) .. " (no market record before it)") end
    if type(rec.books) ~= "table" then fail(path, n, "book record without books") end
    for label, b in pairs(rec.books) do
      if type(b) ~= "table" then fail(path, n, "books." .. tostring(label) .. " must be an object") end
      local bb, ba = best(b.bids or {}, true), best(b.asks or {}, false)
      if bb and ba and bb >= ba then
        fail(path, n, string.format("crossed book for %s: best bid %s >= best ask %s", tostring(label), bb, ba))
      end
    end
  elseif kind == "updown" then
    local w = rec.window
    if type(w) ~= "table" or type(w.condition_id) ~= "string" then fail(path, n, "updown record without window.condition_id") end
    for _, f in ipairs { "asset", "interval", "start_date", "end_date" } do
      if type(w[f]) ~= "string" then fail(path, n, "updown record without window." .. f) end
    end
    known[w.condition_id] = true
  elseif kind == "spot" then
    if type(rec.symbol) ~= "string" then fail(path, n, "spot record without symbol") end
    if not tonumber(rec.price) then fail(path, n, "spot record without a price") end
  elseif kind == "window" then
    local msg = rec.msg
    if type(msg) ~= "table" or type(msg.market_id) ~= "string" then fail(path, n, "window record without msg.market_id") end
    if not known[msg.market_id] then fail(path, n, "unknown window " .. msg.market_id .. " (no updown record before it)") end
    if type(msg.event) ~= "string" then fail(path, n, "window record without msg.event") end
  else
    fail(path, n, "unknown record type " .. tostring(kind))
  end
end

-- Iterates the events of path: for kind, t, x, n in data.events(path, warn, st) do ... end,
-- kind "price" with x the price message, or any other record type with x the record; t is
-- the record's t; n its line. Raises {data_error = "FILE:LINE: ..."} on bad data. Lines are
-- read and decoded by the C reader (core.jsonl_open), a price record without its record
-- table; one that passes the few checks a price needs is returned at once, anything else
-- goes through check (perf, issue 12: f:lines and json_decode of each line were ~3 us of a
-- price event's ~10). st, when given, gets st.bytes(): the bytes read so far (a progress bar).
function _M.events(path, warn, st)
  local r, err = core.jsonl_open(path)
  if not r then error({ data_error = tostring(err) }, 0) end
  local known, last_t = {}, nil
  local closed = false
  if st then st.bytes = function() return r:bytes() end end
  local function close()
    if not closed then closed = true; r:close() end
  end
  local rnext = r.next -- the method once: the iterator runs once per record
  return function()
    if closed then return nil end
    local kind, n, a, b = rnext(r)
    if kind == "price" then
      local t, msg = a, b
      if type(t) == "number" and (not last_t or t >= last_t) and known[msg.market_id] then
        last_t = t
        return "price", t, msg, n
      end
      a = { type = "price", t = t, msg = msg }
    elseif kind == nil then
      close()
      return nil
    elseif kind == false then
      if not b then
        if warn then warn(path .. ":" .. n .. ": half-written last line skipped") end
        close()
        return nil
      end
      close()
      fail(path, n, "not JSON (" .. tostring(a) .. ")")
    end
    local rec = a
    _M.check(rec, path, n, known, last_t)
    if rec.t then last_t = rec.t end
    return rec.type, rec.t, rec.type == "price" and rec.msg or rec, n
  end
end

-- Iterates the records of path: for rec, n in data.records(path, warn, st) do ... end (data.events
-- as record tables, for callers that want them whole; a price record's keys other than type, t
-- and msg are not kept).
function _M.records(path, warn, st)
  local it = _M.events(path, warn, st)
  return function()
    local kind, t, x, n = it()
    if kind == nil then return nil end
    if kind == "price" then return { type = "price", t = t, msg = x }, n end
    return x, n
  end
end

return _M
