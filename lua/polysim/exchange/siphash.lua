-- SipHash-2-4 (Aumasson & Bernstein) on Lua 5.4 integers: a keyed 64-bit PRF.
-- The exchange uses it to remember which presented API keys it has already verified
-- (fingerprint -> key record) without keeping raw keys and without re-running SHA-256 on
-- every request; the key store itself holds only SHA-256 hashes.
local _M = {}

local sunpack = string.unpack

--- hash(k0, k1, s): SipHash-2-4 of string s under the 128-bit key (k0, k1) (two integers,
--- the little-endian halves of the 16 key bytes). Returns a 64-bit integer.
local function rounds(v0, v1, v2, v3, r)
  for _ = 1, r do
    v0 = v0 + v1; v1 = (v1 << 13) | (v1 >> 51); v1 = v1 ~ v0; v0 = (v0 << 32) | (v0 >> 32)
    v2 = v2 + v3; v3 = (v3 << 16) | (v3 >> 48); v3 = v3 ~ v2
    v0 = v0 + v3; v3 = (v3 << 21) | (v3 >> 43); v3 = v3 ~ v0
    v2 = v2 + v1; v1 = (v1 << 17) | (v1 >> 47); v1 = v1 ~ v2; v2 = (v2 << 32) | (v2 >> 32)
  end
  return v0, v1, v2, v3
end

function _M.hash(k0, k1, s)
  local v0 = k0 ~ 0x736f6d6570736575
  local v1 = k1 ~ 0x646f72616e646f6d
  local v2 = k0 ~ 0x6c7967656e657261
  local v3 = k1 ~ 0x7465646279746573
  local n = #s
  local full = n - n % 8
  for i = 1, full, 8 do
    local m = sunpack("<i8", s, i)
    v3 = v3 ~ m
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
    v0 = v0 ~ m
  end
  local m = (n & 0xff) << 56
  for j = 0, n - full - 1 do m = m | (s:byte(full + 1 + j) << (8 * j)) end
  v3 = v3 ~ m
  v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
  v0 = v0 ~ m
  v2 = v2 ~ 0xff
  v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 4)
  return v0 ~ v1 ~ v2 ~ v3
end

-- perf (issue 13): the C core's identical SipHash-2-4 when it is there (src/server.c);
-- spec/front_door_spec.lua checks the two agree.
_M.lua_hash = _M.hash
local okc, core = pcall(require, "polysim.core")
if okc and type(core) == "table" and core.siphash24 then _M.hash = core.siphash24 end

return _M
