-- A small recording for the backtest specs, written by hand in the documented format (README
-- "The recording"): two binary markets, a price per second each on a sine wave, a book every
-- 10 s. btdata.dataset(n [, extra_lines]) -> the text of n seconds; btdata.market(id, q) -> a
-- market record; btdata.T0, .A, .B.
local core = require "polysim.core"

local _M = {}

local T0 = 1800000000
local A = "0x" .. string.rep("a", 64)
local B = "0x" .. string.rep("b", 64)
_M.T0, _M.A, _M.B = T0, A, B

function _M.market(id, q)
  return { type = "market", t = T0, market = { condition_id = id, question = q, outcomes = { "Yes", "No" },
    fee_rate = "0.02", tick_size = "0.01", category = "politics",
    live_price = { outcomes = { { label = "Yes", price = "0.50", token_id = id .. "1" },
                                { label = "No", price = "0.50", token_id = id .. "2" } } } } }
end

local function levels(p, side)
  local out = {}
  for k = 1, 4 do
    local lp = side == "bids" and p - 0.01 * k or p + 0.01 * (k - 1) + 0.01
    out[k] = { string.format("%.2f", lp), "100" }
  end
  return out
end

function _M.dataset(n, extra)
  local lines = { core.json_encode { type = "meta", version = 1, started_at = T0 } }
  lines[#lines + 1] = core.json_encode(_M.market(A, "Market A?"))
  lines[#lines + 1] = core.json_encode(_M.market(B, "Market B?"))
  for s = 0, n - 1 do
    local function price(id) return 0.5 + 0.1 * math.sin(s / 7 + (id == B and 1 or 0)) end
    if s % 10 == 0 then
      for _, id in ipairs { A, B } do
        local p = price(id)
        lines[#lines + 1] = core.json_encode { type = "book", t = T0 + s, market_id = id,
          books = { Yes = { bids = levels(p, "bids"), asks = levels(p, "asks") } } }
      end
    end
    for _, id in ipairs { A, B } do
      local p = price(id)
      local ps, ns = string.format("%.2f", p), string.format("%.2f", 1 - p)
      lines[#lines + 1] = core.json_encode { type = "price", t = T0 + s + 0.5, msg = { type = "price",
        market_id = id, buy = ps, sell = ns, outcomes = { { label = "Yes", price = ps }, { label = "No", price = ns } } } }
    end
  end
  for _, l in ipairs(extra or {}) do lines[#lines + 1] = l end
  return table.concat(lines, "\n") .. "\n"
end

function _M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function _M.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Runs a shell command; returns its stdout, its stderr and its exit code.
function _M.sh(cmd)
  local err = os.tmpname()
  local p = io.popen(cmd .. " 2>" .. err)
  local out = p:read("a")
  local ok, _, code = p:close()
  local e = _M.slurp(err) or ""
  os.remove(err)
  return out, e, ok and 0 or code
end

function _M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

return _M
