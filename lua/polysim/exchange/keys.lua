-- Users, API keys, JWTs, tiers, permissions and rate limits of the local exchange.
--
-- Keys are "ps_live_" + 64 lowercase hex; only sha256_hex(raw) is kept (by_hash). A user
-- has a plan (free/pro/pro_plus/enterprise); a key's tier may not exceed its user's plan.
-- Dashboard JWTs are opaque, JWT-shaped strings minted from the seed and looked up exactly.
local sha256 = require "polysim.exchange.sha256"
local siphash = require "polysim.exchange.siphash"
local util = require "polysim.exchange.util"
local errors = require "polysim.exchange.errors"

local _M = {}

local array, null, opt = util.array, util.null, util.opt
local ceil = math.ceil

_M.TIER_ORDER = { "free", "pro", "pro_plus", "enterprise" }
_M.TIER_RANK = { free = 1, pro = 2, pro_plus = 3, enterprise = 4 }
-- wallet = API wallet baseline in dollars
_M.DEFAULT_TIERS = {
  free = { per_second = 5, per_minute = 300, ws = 2, batch = 5, wallet = 0 },
  pro = { per_second = 20, per_minute = 1200, ws = 10, batch = 20, wallet = 10000 },
  pro_plus = { per_second = 30, per_minute = 1800, ws = 25, batch = 30, wallet = 25000 },
  enterprise = { per_second = 50, per_minute = 3000, ws = 50, batch = 50, wallet = 100000 },
}
_M.MAX_ACTIVE_KEYS = 5
_M.ROTATE_OVERLAP = 24 * 3600

--- tiers(overrides): the tier table with per-field overrides applied.
function _M.tiers(overrides)
  local t = {}
  for name, d in pairs(_M.DEFAULT_TIERS) do
    local c = util.copy(d)
    local o = overrides and overrides[name]
    if type(o) == "table" then
      for k, v in pairs(o) do
        local iv = type(v) == "number" and math.tointeger(v)
        if v == math.huge then iv = math.maxinteger end
        if c[k] ~= nil and iv then c[k] = iv end
      end
    end
    c.name = name
    t[name] = c
  end
  return t
end

--- tier_info(tier): the RateLimitTierInfo table.
function _M.tier_info(tier)
  return { tier = tier.name, requests_per_second = tier.per_second,
           requests_per_minute = tier.per_minute, max_ws_connections = tier.ws,
           max_batch_size = tier.batch, starting_balance = string.format("%d.00", tier.wallet),
           read_only = tier.name == "free" }
end

-- State ------------------------------------------------------------------------------------

--- new(opts): the key store. opts: rng (a stream for key material), tiers.
function _M.new(opts)
  return {
    -- verified: SipHash fingerprint of a presented raw key -> key record, so that repeated
    -- requests skip SHA-256; bounded, and it never holds raw keys
    verified = {}, verified_n = 0, sip0 = opts.rng:next(), sip1 = opts.rng:next(),
    rng = opts.rng, tiers = opts.tiers, by_hash = {}, by_id = {}, next_key_id = 1,
    users = {}, next_user_id = 1, ids = { pos = 0 }, jwts = {}, ws_tokens = {}, ws_count = 0,
    closed_beta = false,
  }
end

local function jwt(K, user)
  local header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
  local payload = util.b64url(string.format(
    '{"sub":"%s","role":"authenticated","aud":"authenticated","email":"%s"}', user.uuid, user.email))
  local sig = util.b64url(sha256.digest(K.rng:hex(32) .. header .. "." .. payload))
  return header .. "." .. payload .. "." .. sig
end

--- add_user(K, opts): a new user. opts.plan (default "pro"), opts.email, opts.now.
function _M.add_user(K, opts)
  local id = K.next_user_id
  K.next_user_id = id + 1
  local user = {
    id = id, uuid = K.rng:uuid(), plan = opts.plan or "pro",
    email = opts.email or ("trader" .. id .. "@example.com"),
    created_at = opts.now, keys = {},
    positions = {}, pos_list = {}, orders = {}, open = {}, trades = {}, idem = {}, equity = {},
    ids = K.ids,
  }
  user.jwt = jwt(K, user)
  K.jwts[user.jwt] = user
  K.users[id] = user
  return user
end

function _M.raw_key(K) return "ps_live_" .. K.rng:hex(64) end

--- add_key(K, user, fields, now): registers a key (fields.raw or a generated one) and returns
--- the key record and the raw key.
function _M.add_key(K, user, fields, now)
  local raw = fields.raw or _M.raw_key(K)
  local tier = fields.tier or user.plan
  local perms = fields.permissions
  if not perms then
    perms = tier == "free" and { "read" } or { "read", "trade" }
  end
  local set = {}
  for _, p in ipairs(perms) do set[p] = true end
  local key = {
    id = K.next_key_id, user = user, hash = sha256.hex(raw), prefix = raw:sub(1, 16),
    name = fields.name, tier = tier, permissions = perms, perm_set = set, is_active = true,
    created_at = now, last_used_at = nil, expires_at = nil, rl = { head = 1, tail = 0 },
  }
  K.next_key_id = key.id + 1
  K.by_hash[key.hash] = key
  K.by_id[key.id] = key
  user.keys[#user.keys + 1] = key
  return key, raw
end

--- active_count(user): active keys that are not on their way out after a rotation.
function _M.active_count(user)
  local n = 0
  for _, k in ipairs(user.keys) do
    if k.is_active and not k.expires_at then n = n + 1 end
  end
  return n
end

-- Authentication ---------------------------------------------------------------------------

local function bearer(h)
  local a = h["authorization"]
  if type(a) ~= "string" then return nil end
  local tok = a:match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
  return tok
end

local KEY_HEADERS = { "x-api-key", "poly_api_key", "poly-api-key" } -- made once, not per request
local function header_key(h)
  for _, name in ipairs(KEY_HEADERS) do
    local v = h[name]
    if type(v) == "string" and v ~= "" then return v end
  end
  local b = bearer(h)
  if b and b:sub(1, 8) == "ps_live_" then return b end
  return nil
end

--- lookup(K, raw, now): the active key for raw, or nil, error response.
function _M.lookup(K, raw, now)
  if #raw ~= 72 then return nil, errors.api(401, "INVALID_API_KEY", "Invalid API key") end
  -- perf (issue 13): a fingerprint already verified is a key whose shape was checked when it
  -- was first seen; the two pattern scans (15k instructions of a 25k authentication in
  -- callgrind) run only for the others.
  local fp = siphash.hash(K.sip0, K.sip1, raw)
  local key = K.verified[fp]
  if not key then
    if not raw:match("^ps_live_%x+$") or raw:find("[A-F]") then
      return nil, errors.api(401, "INVALID_API_KEY", "Invalid API key")
    end
    key = K.by_hash[sha256.hex(raw)]
    if key then
      if K.verified_n >= 4096 then K.verified, K.verified_n = {}, 0 end
      K.verified[fp] = key
      K.verified_n = K.verified_n + 1
    end
  end
  if not key or not key.is_active then
    return nil, errors.api(401, "INVALID_API_KEY", "Invalid, revoked or deactivated API key")
  end
  if key.expires_at and now >= key.expires_at then
    return nil, errors.api(401, "KEY_EXPIRED", "API key expired; use the rotated key",
      { expired_at = util.iso(key.expires_at) })
  end
  if key.restricted then
    return nil, errors.api(403, "ACCESS_RESTRICTED", "This API key is not on the access allowlist")
  end
  return key
end

--- authenticate(K, headers, surface, now): the caller context, or nil, error response.
--- surface: "trade" (X-API-Key only), "dashboard" (key or Bearer JWT), "bootstrap" (JWT only).
--- ctx = { user, key (nil for JWT), tier (tier table), perms (set), bucket (rate limit holder) }
function _M.authenticate(K, headers, surface, now)
  local h = headers
  if surface == "bootstrap" then
    local tok = bearer(h)
    if not tok then return nil, errors.detail(401, "Not authenticated") end
    local user = K.jwts[tok]
    if not user or (user.jwt_expires_at and now >= user.jwt_expires_at) then
      return nil, errors.detail(401, "Invalid or expired token")
    end
    return { user = user, tier = K.tiers[user.plan], perms = { read = true, trade = true }, bucket = user, jwt = true }
  end
  local raw = header_key(h)
  if raw then
    local key, err = _M.lookup(K, raw, now)
    if not key then return nil, err end
    key.last_used_at = now
    return { user = key.user, key = key, tier = K.tiers[key.tier], perms = key.perm_set, bucket = key }
  end
  local tok = bearer(h)
  if tok then
    if surface ~= "dashboard" then
      return nil, errors.api(401, "INVALID_API_KEY",
        "Bearer tokens are not accepted on this endpoint: send X-API-Key: ps_live_...")
    end
    local user = K.jwts[tok]
    if not user or (user.jwt_expires_at and now >= user.jwt_expires_at) then
      return nil, errors.api(401, "INVALID_API_KEY", "Invalid or expired bearer token")
    end
    user.rl = user.rl or { head = 1, tail = 0 }
    return { user = user, tier = K.tiers[user.plan], perms = { read = true, trade = true }, bucket = user, jwt = true }
  end
  return nil, errors.api(401, "MISSING_API_KEY", "Missing API key: send X-API-Key: ps_live_...")
end

-- Rate limits: sliding windows over the timestamps of accepted requests --------------------

-- The limit's text, per limit (a handful of tiers): tostring was 2k instructions a request.
-- The reset's seconds (1..61: the oldest request in the window is under 60 s old) use it too.
local limit_texts = {}
local function limit_text(n)
  local t = limit_texts[n]
  if not t then t = tostring(n); limit_texts[n] = t end
  return t
end

--- rate(K, ctx, now): nil when allowed (and recorded), or the 429 response. Sets
--- ctx.rl_headers either way.
function _M.rate(ctx, now)
  local holder = ctx.bucket
  local rl = holder.rl
  if not rl then rl = { head = 1, tail = 0, sec = 1 }; holder.rl = rl end
  local tier = ctx.tier
  local head, tail, sec = rl.head, rl.tail, rl.sec or 1
  if tail > 0 and now < rl[tail] then now = rl[tail] end      -- never step back in time
  while head <= tail and rl[head] <= now - 60 do rl[head] = nil; head = head + 1 end
  if head > tail then head, tail = 1, 0 end
  if sec < head then sec = head end
  while sec <= tail and rl[sec] <= now - 1 do sec = sec + 1 end
  rl.head, rl.tail, rl.sec = head, tail, sec
  local in_min = tail - head + 1
  local in_sec = tail - sec + 1
  local retry
  if in_sec >= tier.per_second then retry = rl[sec] + 1 - now end
  if in_min >= tier.per_minute then
    local r2 = rl[head] + 60 - now
    if not retry or r2 > retry then retry = r2 end
  end
  if retry then
    local ra = ceil(retry)
    if ra < 1 then ra = 1 end
    local reset = in_min > 0 and ceil(rl[head] + 60 - now) or 0
    ctx.rl_headers = {
      ["X-RateLimit-Limit"] = tostring(tier.per_minute),
      ["X-RateLimit-Remaining"] = tostring(math.max(0, tier.per_minute - in_min)),
      ["X-RateLimit-Reset"] = tostring(math.max(ra, reset)),
      ["X-RateLimit-Tier"] = tier.name,
    }
    local resp = errors.api(429, "RATE_LIMITED",
      string.format("Rate limit exceeded for tier %s; retry after %d s", tier.name, ra),
      { tier = tier.name, requests_per_second = tier.per_second, requests_per_minute = tier.per_minute,
        retry_after = ra })
    resp.headers["Retry-After"] = tostring(ra)
    return resp
  end
  tail = tail + 1
  rl[tail] = now
  rl.tail = tail
  in_min = in_min + 1
  local left = tier.per_minute - in_min
  ctx.rl_headers = {
    ["X-RateLimit-Limit"] = limit_text(tier.per_minute),
    ["X-RateLimit-Remaining"] = tostring(left > 0 and left or 0),
    ["X-RateLimit-Reset"] = limit_text(ceil(rl[head] + 60 - now)),
    ["X-RateLimit-Tier"] = tier.name,
    ["x-request-id"] = false,   -- a slot for the pipeline's (the table becomes the answer's headers)
  }
  return nil
end

-- Views ------------------------------------------------------------------------------------

function _M.key_info(key, now)
  local expired = key.expires_at and now >= key.expires_at
  return {
    id = key.id, key_prefix = key.prefix, name = opt(key.name),
    permissions = array(util.copy(key.permissions)), rate_limit_tier = key.tier,
    is_active = key.is_active and not expired,
    created_at = util.iso(key.created_at),
    last_used_at = key.last_used_at and util.iso(key.last_used_at) or null,
    expires_at = key.expires_at and util.iso(key.expires_at) or null,
  }
end

function _M.created_view(key, raw)
  return {
    id = key.id, raw_key = raw, key_prefix = key.prefix, name = opt(key.name),
    rate_limit_tier = key.tier, permissions = array(util.copy(key.permissions)),
    created_at = util.iso(key.created_at),
  }
end

-- Single-use WebSocket tokens ---------------------------------------------------------------

function _M.mint_ws_token(K, ctx, now, ttl)
  -- forget expired tokens now and then
  K.ws_count = K.ws_count + 1
  if K.ws_count % 64 == 0 then
    for tok, t in pairs(K.ws_tokens) do
      if now >= t.expires_at then K.ws_tokens[tok] = nil end
    end
  end
  local header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
  local tok = header .. "." .. util.b64url(K.rng:bytes(24)) .. "." .. util.b64url(K.rng:bytes(32))
  K.ws_tokens[tok] = { user = ctx.user, key = ctx.key, tier = ctx.tier, expires_at = now + ttl }
  return tok
end

function _M.ws_authorize(K, token, channel, now)
  if type(token) ~= "string" then return nil, "missing token" end
  local t = K.ws_tokens[token]
  if not t then return nil, "invalid or already used token" end
  K.ws_tokens[token] = nil
  if now >= t.expires_at then return nil, "token expired" end
  if t.key and (not t.key.is_active or (t.key.expires_at and now >= t.key.expires_at)) then
    return nil, "key no longer active"
  end
  return {
    user_id = t.user.id, key_id = t.key and t.key.id or nil, tier = t.tier.name,
    max_ws_connections = t.tier.ws, channel = channel, max_subscriptions = 50,
  }
end

return _M
