-- Idempotency around placement: records per user under the Idempotency-Key (or the client
-- order id), replays and conflicts, and the memory bounds (record expiry, compaction of
-- finished orders and trades).
local core = require "polysim.core"
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"
local parse = require "polysim.exchange.orders.parse"
local match = require "polysim.exchange.orders.match"

local _M = {}

local opt = util.opt

-- Request-level entry points (idempotency) ----------------------------------------------------

-- A record keeps the answer as its JSON text: about a third of the memory of the table, and a
-- replay hands out a fresh table that no caller can have changed.
local function record(fp, resp)
  local h
  for k, v in pairs(resp.headers or {}) do h = h or {}; h[k] = v end
  return { fp = fp, status = resp.status, headers = h, json = core.json_encode(resp.body),
           order_id = resp.body and resp.body.order_id }
end

local function replay(rec)
  local h = { ["Idempotent-Replayed"] = "true" }
  for k, v in pairs(rec.headers or {}) do h[k] = v end
  -- is_error: the pipeline gives a replayed error body the replay's own request_id, the one
  -- in its x-request-id header
  -- encoded: the front door sends a 200's recorded text as it is
  return { status = rec.status, headers = h, body = core.json_decode(rec.json), is_error = rec.status >= 400,
           encoded = rec.status == 200 and rec.json or nil }
end

-- Memory bounds (issue 10 #8) -------------------------------------------------------------
-- Idempotency records are kept for ex.idem_window seconds (24 h unless exchange.new says
-- otherwise), measured on the exchange's clock; each user's records expire oldest first
-- from a FIFO of {key, at}. Finished orders and trades beyond the newest ex.keep_finished
-- per user are dropped (pending orders always stay), so a long soak holds a bounded amount.
_M.IDEM_WINDOW = 86400
-- perf2 (issue 10 #8): and at most ex.idem_max per user (the oldest go first), so that a
-- fast client cannot fill memory inside the window (the 5-minute soak at 1,500 req/s).
_M.IDEM_MAX = 100000
_M.KEEP_FINISHED = 10000

--- idem_get(ex, user, key, now): the live record under key, or nil (an expired one is gone).
function _M.idem_get(ex, user, key, now)
  local rec = user.idem[key]
  if rec and now - rec.at >= (ex.idem_window or _M.IDEM_WINDOW) then
    user.idem[key] = nil
    return nil
  end
  return rec
end

--- idem_put(ex, user, key, rec, now): stores rec under key and expires the old ones.
function _M.idem_put(ex, user, key, rec, now)
  local window = ex.idem_window or _M.IDEM_WINDOW
  rec.at, rec.key = now, key
  user.idem[key] = rec
  -- the FIFO holds the records themselves (no {key, at} pair per record)
  local q = user.idem_q
  if not q then q = { first = 1, last = 0 }; user.idem_q = q end
  q.last = q.last + 1
  q[q.last] = rec
  local max = ex.idem_max or _M.IDEM_MAX
  while q.first <= q.last do
    local e = q[q.first]
    if now - e.at < window and q.last - q.first < max then break end
    if user.idem[e.key] == e then user.idem[e.key] = nil end
    q[q.first] = nil
    q.first = q.first + 1
  end
end

--- idem_count(user): the number of idempotency records held.
function _M.idem_count(user)
  local q = user.idem_q
  return q and (q.last - q.first + 1) or 0
end

-- Drops the oldest finished orders (and trades) beyond keep, amortised: only once the list
-- has grown to twice that.
local function compact(ex, user)
  local keep = ex.keep_finished or _M.KEEP_FINISHED
  local list = user.orders
  if #list > 2 * keep then
    local finished = 0
    for k = #list, 1, -1 do if list[k].status ~= "PENDING" then finished = finished + 1 end end
    local drop = finished - keep
    local out = {}
    for _, o in ipairs(list) do
      if drop > 0 and o.status ~= "PENDING" then
        drop = drop - 1
        ex.O.by_id[o.id] = nil
      else
        out[#out + 1] = o
      end
    end
    user.orders = out
  end
  local tr = user.trades
  if #tr > 2 * keep then
    local out = {}
    table.move(tr, #tr - keep + 1, #tr, 1, out)
    user.trades = out
  end
end
_M.compact = compact

--- submit(ex, ctx, s, idem_key, now): idempotency around place().
function _M.submit(ex, ctx, s, idem_key, now)
  local key = idem_key and ("h:" .. idem_key) or (s.client_order_id and ("c:" .. s.client_order_id))
  local user = ctx.user
  local fp
  if key then
    fp = parse.fingerprint(s)
    local rec = _M.idem_get(ex, user, key, now)
    if rec then
      if rec.fp == fp then return replay(rec) end
      return errors.api(409, "IDEMPOTENCY_CONFLICT",
        "This idempotency key was already used with different parameters",
        { idempotency_key = idem_key or s.client_order_id, original_order_id = opt(rec.order_id) })
    end
  end
  local resp = match.place(ex, ctx, s, now)
  -- Refusals are kept too (BRIEF.md: the same key returns the first result, whatever it was);
  -- as text they cost about 400 bytes where the tables cost 1.4 KB (the 5-minute soak held
  -- +328 MB after 117,662 refused orders).
  if key and resp.status < 500 then
    local rec = record(fp, resp)
    _M.idem_put(ex, user, key, rec, now)
    -- perf (issue 13): the front door would encode the same body again; only a 200's (an
    -- error's body gains its request_id later, clob_response rewrites a refusal's)
    if resp.status == 200 then resp.encoded = rec.json end
  end
  compact(ex, user)
  return resp
end

return _M
