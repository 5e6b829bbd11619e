-- Seeded pseudo-random numbers for the local exchange: xoshiro256** seeded through
-- splitmix64, on Lua 5.4 integers (64-bit, wrapping arithmetic, logical shifts).
-- Never math.random: the same seed must give the same universe and price paths on
-- every machine. Independent streams come from fork(label) so that, for example,
-- minting keys never perturbs price paths.
local _M = {}

local rng_methods = {}
local rng_mt = { __name = "polysim.exchange.rng", __index = rng_methods }

local function rotl(x, k) return (x << k) | (x >> (64 - k)) end

local function splitmix(state)
  state = state + 0x9E3779B97F4A7C15
  local z = state
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return state, z ~ (z >> 31)
end

local function string_hash(s)           -- FNV-1a 64, for fork labels
  local h = 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ s:byte(i)) * 0x100000001b3 end
  return h
end

--- new(seed): seed is an integer or a string.
function _M.new(seed)
  if type(seed) == "string" then seed = string_hash(seed) end
  seed = math.tointeger(seed) or 0
  local s = { seed }
  for i = 1, 4 do seed, s[i] = splitmix(seed) end
  return setmetatable(s, rng_mt)
end

--- next(): a uniformly distributed 64-bit integer (any sign).
-- rotl is written out in next and below: a backtest's book rebuilds draw ~300 numbers per
-- request, and the profile of examples/mean_reversion replayed had rng.lua at 40% of the
-- VM time, most of it the calls (same numbers as before, in the same order).
local function next_u64(self)
  local s0, s1, s2, s3 = self[1], self[2], self[3], self[4]
  local x = s1 * 5
  local result = ((x << 7) | (x >> 57)) * 9
  local t = s1 << 17
  s2 = s2 ~ s0; s3 = s3 ~ s1; s1 = s1 ~ s2; s0 = s0 ~ s3
  s2 = s2 ~ t; s3 = (s3 << 45) | (s3 >> 19)
  self[1], self[2], self[3], self[4] = s0, s1, s2, s3
  return result
end
rng_methods.next = next_u64

--- below(n): integer in [0, n), n >= 1 (53 high bits, modulo: bias is negligible).
local function below(self, n)
  local s0, s1, s2, s3 = self[1], self[2], self[3], self[4]
  local x = s1 * 5
  local result = ((x << 7) | (x >> 57)) * 9
  local t = s1 << 17
  s2 = s2 ~ s0; s3 = s3 ~ s1; s1 = s1 ~ s2; s0 = s0 ~ s3
  s2 = s2 ~ t; s3 = (s3 << 45) | (s3 >> 19)
  self[1], self[2], self[3], self[4] = s0, s1, s2, s3
  return (result >> 11) % n
end
rng_methods.below = below

--- range(lo, hi): integer in [lo, hi].
function rng_methods:range(lo, hi)
  return lo + below(self, hi - lo + 1)
end

--- chance(num, den): true with probability num/den.
function rng_methods:chance(num, den)
  return self:below(den) < num
end

--- pick(list): a random element.
function rng_methods:pick(list)
  return list[self:below(#list) + 1]
end

--- hex(n): n lowercase hex digits.
function rng_methods:hex(n)
  local parts, left = {}, n
  while left > 0 do
    local k = left < 16 and left or 16
    parts[#parts + 1] = string.format("%016x", self:next()):sub(1, k)
    left = left - k
  end
  return table.concat(parts)
end

--- digits(n): n decimal digits, the first non-zero.
function rng_methods:digits(n)
  local t = { tostring(self:range(1, 9)) }
  for i = 2, n do t[i] = tostring(self:below(10)) end
  return table.concat(t)
end

--- bytes(n): a string of n random bytes.
function rng_methods:bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(self:below(256)) end
  return table.concat(t)
end

--- fork(label): an independent stream derived from this one's state and a label,
--- without advancing this one.
function rng_methods:fork(label)
  local h = string_hash(tostring(label))
  return _M.new(self[1] ~ rotl(self[3], 17) ~ h)
end

--- uuid(): a version-4 UUID string.
local function uuid_text(a, b)
  return string.format("%08x-%04x-4%03x-%x%03x-%012x", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
    8 + ((b >> 62) & 3), (b >> 48) & 0xfff, b & 0xffffffffffff)
end
_M.uuid_text = uuid_text
-- perf (issue 13): the C core's identical formatting when it is there (src/server.c; every
-- request's id is one); spec/front_door_spec.lua checks the two agree.
local okc, core = pcall(require, "polysim.core")
if okc and type(core) == "table" and core.uuid4 then uuid_text = core.uuid4 end

function rng_methods:uuid()
  local a = next_u64(self)
  return uuid_text(a, next_u64(self))
end

_M.string_hash = string_hash
return _M
