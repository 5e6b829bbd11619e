-- The strategy runtime's observation side: observe(fn) and the notifications it hears,
-- refresh() (the account read into the snapshot) and snapshot() (where the strategy stands,
-- P&L included). Methods of polysim.strategy's runtime (mixed in there).
local core = require "polysim.core"

local error, ipairs, pcall, tostring, type = error, ipairs, pcall, tostring, type

local _M = {}
_M.TAIL = 50                 -- snapshot: last N fills, log lines and reloads

local Runtime = {}
_M.methods = Runtime

-- fn(kind, data) for "fill", "order", "log", "reload", "equity". Returns a function that
-- removes it again.
function Runtime:observe(fn)
  if type(fn) ~= "function" then error("strategy:observe: fn must be a function", 2) end
  local obs = self.observers
  obs[#obs + 1] = fn
  return function()
    for i = #obs, 1, -1 do if obs[i] == fn then table.remove(obs, i) end end
  end
end

function Runtime:_notify(kind, data)
  local obs = self.observers
  if #obs == 0 then return end
  for _, fn in ipairs(obs) do
    local ok, err = pcall(fn, kind, data)
    if not ok and kind ~= "log" then self:_log("warn", "polysim", "observer failed: " .. tostring(err)) end
  end
end

local function str(v)
  if v == nil or v == core.null then return nil end
  return tostring(v)
end

-- Reads cash, equity, positions and open orders from the client into the snapshot's
-- account view (in a task: its calls yield). Emits "equity".
function Runtime:refresh()
  local client = self.client
  if not client or self.refreshing then return nil, "no client" end
  self.refreshing = true
  local ok, err = pcall(function()
    local acct = {}
    local p = client.portfolio and client:portfolio()
    local bal, positions
    if type(p) == "table" and type(p.balance) == "table" then
      bal, positions = p.balance, p.positions
    elseif client.balance then
      bal = client:balance()
      positions = client.positions and client:positions { status = "OPEN" }
    end
    if type(bal) == "table" then
      acct.cash = str(bal.balance)
      acct.equity = str(bal.total_value)
      local total, start = bal.total_value, bal.starting_balance
      if total and start and total ~= core.null and start ~= core.null then
        local d = core.decimal
        local okd, pnl = pcall(function() return tostring(d.new(tostring(total)) - d.new(tostring(start))) end)
        acct.pnl = okd and pnl or str(bal.unrealized_pnl)
      else
        acct.pnl = str(bal.unrealized_pnl)
      end
    end
    acct.positions = {}
    if type(positions) == "table" then
      for _, pos in ipairs(positions) do
        if pos.status == nil or pos.status == "OPEN" then
          acct.positions[#acct.positions + 1] = {
            market_id = str(pos.market_id), outcome = str(pos.outcome), quantity = str(pos.quantity),
            avg_price = str(pos.avg_entry_price or pos.avg_price), mark = str(pos.current_price or pos.mark),
            unrealized = str(pos.unrealized_pnl or pos.unrealized),
          }
        end
      end
    end
    acct.at = self.clock.now()
    self.account = acct
  end)
  self.refreshing = false
  if not ok then return nil, err end
  self:_notify("equity", { t = self.account.at, equity = self.account.equity, cash = self.account.cash,
                           pnl = self.account.pnl })
  return self.account
end

-- A plain table of where the strategy stands (numbers as decimal strings). The account
-- part (cash, equity, pnl, positions) is the last refresh()'s; open_orders are the orders
-- this runtime placed and has not seen finish.
function Runtime:snapshot()
  local v = self.current
  local acct = self.account or {}
  local own = self.own and self.own:summary()
  local open = own and own.open_orders or {}
  local reloads = {}
  for i, r in ipairs(self.reload_history) do reloads[i] = { at = r.at, ms = r.ms, ok = r.ok, error = r.error } end
  return {
    name = self.name, version = v and v.n or 0, started_at = self.started_at, now = self.clock.now(),
    cash = acct.cash, equity = acct.equity, pnl = acct.pnl,
    positions = acct.positions or {}, open_orders = open,
    fills = self.fills:list(), log_tail = self.log_tail:list(), reloads = reloads,
    errors = self.stats.errors, last_error = self.last_error,
    own = own and { prefix = own.prefix, placed = own.placed, open = own.open, filled = own.filled,
                    cancelled = own.cancelled, cash = own.cash, pnl = own.pnl } or nil,
  }
end

return _M
