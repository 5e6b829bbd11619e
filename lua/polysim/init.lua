-- polysim: write PolySimulator trading strategies in Lua.
--   local polysim = require "polysim"
--   local client = polysim.new{ api_key = ..., base_url = ... }
local core = require "polysim.core"

local _M = {
  VERSION = core.VERSION,
  _VERSION = "polysim " .. core.VERSION,
  null = core.null,          -- JSON null in decoded answers
  decimal = core.decimal,    -- exact decimal arithmetic for money
  array = core.array,        -- marks a table to be encoded as a JSON array (even when empty)
}

-- The names lua-cjson uses (cjson.encode, cjson.decode, cjson.null): code written for cjson
-- runs on these, except that decode returns nil, message for bad JSON where cjson raises.
_M.json = { encode = core.json_encode, decode = core.json_decode, null = core.null, array = core.array }

function _M.new(opts)
  return require("polysim.client").new(opts)
end

_M.loop = require "polysim.loop"
_M.errors = require "polysim.errors"

-- Tasks: run fn in a coroutine whose client calls wait without blocking the loop.
_M.spawn = _M.loop.spawn
_M.sleep = _M.loop.sleep
_M.wrap = _M.loop.wrap

return _M
