-- The recording format (`polysim record` writes it; anything may produce it): JSON Lines,
-- one record per line, append-only, times `t` in Unix seconds (receive time), never going
-- backwards. The file is read as a stream (never loaded whole).
--
--   {"type":"meta","version":1,"source":"http://...","started_at":T}            first line
--   {"type":"market","t":T,"market":{MarketDetail}}     metadata, before the market's events
--   {"type":"price","t":T,"msg":{WebSocket price message: market_id, buy, sell, outcomes...}}
--   {"type":"book","t":T,"market_id":ID,"books":{"Yes":{"bids":[[p,q],...],"asks":[...]},...}}
--
-- A half-written last line (a crash, Ctrl-C) is skipped with a warning; any other bad line is
-- an error naming the file and line.
local core = require "polysim.core"

local error, tonumber, type = error, tonumber, type
local json_decode = core.json_decode
local find, sub = string.find, string.sub

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
  else
    fail(path, n, "unknown record type " .. tostring(kind))
  end
end

-- Iterates the records of path: for rec, n in data.records(path, warn) do ... end.
-- Raises {data_error = "FILE:LINE: ..."} on bad data.
function _M.records(path, warn)
  local f, err = io.open(path, "rb")
  if not f then error({ data_error = tostring(err) }, 0) end
  local n, known, last_t = 0, {}, nil
  local buf, pos = "", 1
  local eof = false
  local function next_line()
    while true do
      local s, e = find(buf, "\n", pos, true)
      if s then
        local line = sub(buf, pos, s - 1)
        pos = e + 1
        return line, true
      end
      if eof then
        if pos <= #buf then
          local line = sub(buf, pos)
          pos = #buf + 1
          return line, false
        end
        return nil
      end
      local chunk = f:read(1 << 16)
      if not chunk then eof = true else buf = sub(buf, pos) .. chunk; pos = 1 end
    end
  end
  return function()
    while true do
      local line, complete = next_line()
      if not line then
        f:close()
        return nil
      end
      n = n + 1
      if line ~= "" then
        local rec, jerr = json_decode(line)
        if jerr then
          if not complete then
            if warn then warn(path .. ":" .. n .. ": half-written last line skipped") end
            f:close()
            return nil
          end
          fail(path, n, "not JSON (" .. tostring(jerr) .. ")")
        end
        _M.check(rec, path, n, known, last_t)
        if rec.t then last_t = rec.t end
        return rec, n
      end
    end
  end
end

return _M
