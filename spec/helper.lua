-- Shared spec helpers: a local exchange on a free loopback port, in this process, and
-- clients pointed at it. Every spec talks to it over real HTTP.
local polysim = require "polysim"
local core = require "polysim.core"

local H = {}

-- Starts the local exchange; prices move only when a spec calls srv.exchange:tick().
function H.exchange(opts)
  opts = opts or {}
  local o = { port = 0, seed = opts.seed or 7, tick = opts.tick or false }
  for k, v in pairs(opts) do o[k] = v end
  return assert(require("polysim.serve").start(o))
end

-- A client on srv with fast retries, so retry specs take milliseconds (retry_cap 2: a
-- 429's Retry-After up to 2 s is waited on, as a user's client would).
function H.client(srv, opts)
  local o = { base_url = srv.base_url, api_key = srv.api_key, retry_base = 0.01, retry_cap = 2 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return polysim.new(o)
end

-- A fixture server whose handler answers with canned responses: for the error decoder.
function H.fixture(handler)
  return assert(core.serve { port = 0, handler = handler })
end

-- `make` as a user runs it, not with the flags of the make running this spec: make exports
-- command-line variables (make coverage's CFLAGS/LDFLAGS/BUILD=build-cov) to its recipes'
-- environment, so a nested make built into build-cov, or linked libgcov into an install.
H.MAKE = "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u CFLAGS -u LDFLAGS -u BUILD make -s"

-- One raw HTTP exchange through the core (no client-side checks or retries): the front
-- door's answer as it is. Inside a task or outside one (polysim.loop.await).
function H.raw(base, method, path, headers, body)
  return polysim.loop.await(function(on_done)
    core.request { method = method, url = base .. path, headers = headers, body = body,
      timeout = 5, http_version = "1.1", on_done = on_done }
  end)
end

-- A scratch folder for a spec's strategy files: returns the folder and write(src[, name]),
-- which writes src to NAME (or PREFIXn.lua, numbered in call order) there and returns its path.
function H.scratch(prefix)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local n = 0
  return dir, function(src, name)
    n = n + 1
    local path = dir .. "/" .. (name or (prefix .. n .. ".lua"))
    local f = assert(io.open(path, "w"))
    f:write(src)
    f:close()
    return path
  end
end

-- The first of a runtime's log lines that contains text (plain), and how many do.
function H.grep(lines, text)
  for _, l in ipairs(lines) do
    if l:find(text, 1, true) then return l end
  end
end

function H.count(lines, text)
  local n = 0
  for _, l in ipairs(lines) do
    if l:find(text, 1, true) then n = n + 1 end
  end
  return n
end

function H.url(server) return "http://127.0.0.1:" .. server:port() end

-- Raises unless fn raises an error whose message contains `text` (plain match).
function H.raises(text, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error containing: " .. text)
  err = tostring(err)
  assert(err:find(text, 1, true), "error '" .. err .. "' does not contain '" .. text .. "'")
  return err
end

return H
