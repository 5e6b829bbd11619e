-- The one retry policy. The C core reports facts (an HTTP status, a transport failure's
-- code, the Retry-After seconds it read); this table alone decides which failures are
-- transient, which requests may be repeated after one, and how long to wait.
--
-- A request may be repeated when repeating it cannot do harm: its method is idempotent, it
-- carries an Idempotency-Key, or its caller marked it retry-safe (cancel-all). Any request
-- may be repeated after a failure that proves it never reached the server (the connection
-- was refused, the name did not resolve, a 429 or 425 the server sent before doing
-- anything).
local math_huge, math_type = math.huge, math.type

local _M = {}

-- HTTP statuses that are worth another try.
_M.status = { [425] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

-- Statuses that say the server did nothing with the request: repeatable for any method.
_M.status_not_processed = { [425] = true, [429] = true }

-- Transport failures: retryable = worth another try; unsent = the request cannot have
-- reached the server, so repeating it is safe whatever the method.
_M.transport = {
  CONNECTION_REFUSED = { retryable = true, unsent = true },
  DNS_FAILURE = { retryable = false, unsent = true },
  TIMEOUT = { retryable = true },
  EMPTY_REPLY = { retryable = true },
  CONNECTION_RESET = { retryable = true },
  TLS_ERROR = { retryable = false, unsent = true },
  BAD_URL = { retryable = false, unsent = true },
}

-- Methods that are safe to repeat by themselves.
_M.idempotent = { GET = true, HEAD = true, DELETE = true, PUT = true, PATCH = true, OPTIONS = true }

-- Marks err.retryable (the failure is transient) and returns whether the request may be
-- sent again (repeatable: transient and, if it may have been processed, safe to repeat).
function _M.classify(err, may_repeat)
  local status = err.status
  local transient, unsent
  if status == 0 then
    local t = _M.transport[err.code]
    transient, unsent = t and t.retryable or false, t and t.unsent or false
  else
    transient = _M.status[status] or false
    unsent = _M.status_not_processed[status] or false
  end
  err.retryable = transient
  return transient and (may_repeat or unsent)
end

-- A Retry-After the server sent, or nil when absent or not a finite number >= 0 (inf, nan:
-- rejected, never slept on).
function _M.retry_after(v)
  if type(v) ~= "number" or v ~= v or v == math_huge or v < 0 then return nil end
  return v
end

-- Full-jitter exponential back-off: uniform in [d/2, d] with d = base * 2^(attempt-1), at
-- most cap. `u` is a uniform number in [0, 1].
function _M.backoff(base, cap, attempt, u)
  local d = base * (2 ^ (attempt - 1))
  if d > cap then d = cap end
  return d / 2 + u * d / 2
end

-- The wait before attempt `attempt` + 1, or nil, reason when the call must end now:
-- a server-given Retry-After longer than cap, or a wait that would pass the deadline
-- (seconds left, nil for none). `u` as for backoff.
function _M.delay(err, attempt, cfg, u, left)
  local ra = err.retry_after
  local d
  if ra then
    if ra > cfg.retry_cap then return nil, "retry_after" end
    d = ra
  else
    d = _M.backoff(cfg.retry_base, cfg.retry_cap, attempt, u)
  end
  if left and d >= left then return nil, "deadline" end
  return d
end

-- An integer count option (max_retries) from a number.
function _M.count(v)
  if math_type(v) == "integer" then return v end
  return math.floor(v)
end

return _M
