-- Instruction count per client:market(id) call (issue 13), for callgrind:
--   valgrind --tool=callgrind lua5.4 bench/callgrind_client.lua PORT N
-- Run twice with different N; (Ir(N2) - Ir(N1)) / (N2 - N1) is the per-call cost.
local polysim = require "polysim"
local port, n = tonumber(arg[1]), tonumber(arg[2]) or 1000
local client = polysim.new { base_url = "http://127.0.0.1:" .. port, api_key = string.rep("a", 64) }
local id = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
for _ = 1, n do assert(client:market(id)) end
