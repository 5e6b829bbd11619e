-- Handlers: the crypto Up/Down windows.
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local markets = require "polysim.exchange.markets"
local R = require "polysim.exchange.request"

local array = util.array
local floor = math.floor
local q_str, q_int, q_enum, ok = R.q_str, R.q_int, R.q_enum, R.ok

local H = {}

local UPDOWN_ASSETS = {}
for _, a in ipairs(markets.UPDOWN_ASSETS) do UPDOWN_ASSETS[a[1]] = a end
local UPDOWN_IV_UPPER = {}
for _, iv in ipairs(markets.UPDOWN_INTERVALS) do UPDOWN_IV_UPPER[iv[1]:upper()] = iv end

function H.updown(self, _, req, now)
  local asset = q_enum(req, "asset", UPDOWN_ASSETS, true)
  local iv = q_str(req, "interval")
  if iv and not UPDOWN_IV_UPPER[iv:upper()] then
    errors.invalid({ "query", "interval" }, "Input should be '5M', '15M', '1H', '4H' or 'daily'", "enum", iv)
  end
  local limit = q_int(req, "limit", 10, 1, 100)
  local rows = {}
  for _, a in ipairs(markets.UPDOWN_ASSETS) do
    if not asset or a[1] == asset then
      for _, ivl in ipairs(markets.UPDOWN_INTERVALS) do
        if not iv or ivl[1]:upper() == iv:upper() then
          local len = ivl[2]
          local start = floor(now / len) * len
          for k = 0, limit - 1 do
            rows[#rows + 1] = { a, ivl, start + k * len }
          end
        end
      end
    end
  end
  table.sort(rows, function(x, y)
    local ex, ey = x[3] + x[2][2], y[3] + y[2][2]
    if ex ~= ey then return ex < ey end
    if x[2][2] ~= y[2][2] then return x[2][2] < y[2][2] end
    return x[1][1] < y[1][1]
  end)
  local out = array()
  for k = 1, math.min(limit, #rows) do
    local row = rows[k]
    local m = markets.updown_market(self.U, row[1][1], row[1][2], row[2][1], row[2][2], row[3], now)
    out[k] = markets.updown_view(m, now)
  end
  return ok(out)
end

return H
