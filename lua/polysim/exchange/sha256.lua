-- SHA-256 (FIPS 180-4) in pure Lua 5.4, on native 64-bit integers masked to 32 bits.
-- The exchange stores only sha256_hex(raw_key) for API keys.
local _M = {}

local spack, sunpack, srep, sformat = string.pack, string.unpack, string.rep, string.format

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local M32 = 0xffffffff
local W = {}

local function compress(H, block, off)
  for j = 1, 16 do
    W[j] = sunpack(">I4", block, off + (j - 1) * 4)
  end
  for j = 17, 64 do
    local w15, w2 = W[j - 15], W[j - 2]
    local s0 = ((w15 >> 7) | (w15 << 25)) ~ ((w15 >> 18) | (w15 << 14)) ~ (w15 >> 3)
    local s1 = ((w2 >> 17) | (w2 << 15)) ~ ((w2 >> 19) | (w2 << 13)) ~ (w2 >> 10)
    W[j] = (W[j - 16] + s0 + W[j - 7] + s1) & M32
  end
  local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
  for j = 1, 64 do
    local S1 = ((e >> 6) | (e << 26)) ~ ((e >> 11) | (e << 21)) ~ ((e >> 25) | (e << 7))
    local ch = (e & f) ~ (~e & g)
    local t1 = h + (S1 & M32) + (ch & M32) + K[j] + W[j]
    local S0 = ((a >> 2) | (a << 30)) ~ ((a >> 13) | (a << 19)) ~ ((a >> 22) | (a << 10))
    local maj = (a & b) ~ (a & c) ~ (b & c)
    local t2 = (S0 & M32) + maj
    h, g, f, e = g, f, e, (d + t1) & M32
    d, c, b, a = c, b, a, (t1 + t2) & M32
  end
  H[1] = (H[1] + a) & M32; H[2] = (H[2] + b) & M32
  H[3] = (H[3] + c) & M32; H[4] = (H[4] + d) & M32
  H[5] = (H[5] + e) & M32; H[6] = (H[6] + f) & M32
  H[7] = (H[7] + g) & M32; H[8] = (H[8] + h) & M32
end

local function run(s)
  local H = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
  local n = #s
  local padded = s .. "\128" .. srep("\0", (55 - n) % 64) .. spack(">I8", n * 8)
  for off = 1, #padded, 64 do compress(H, padded, off) end
  return H
end

--- digest(s): the 32-byte binary digest of string s.
function _M.digest(s)
  local H = run(s)
  return spack(">I4I4I4I4I4I4I4I4", H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8])
end

--- hex(s): the digest of s as 64 lowercase hex digits.
function _M.hex(s)
  local H = run(s)
  return sformat("%08x%08x%08x%08x%08x%08x%08x%08x", H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8])
end

return _M
