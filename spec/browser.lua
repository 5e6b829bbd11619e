-- Headless Chromium for specs, driven over the DevTools protocol with polysim's own
-- WebSocket client (core.ws_connect). Shared by the dashboard and backtest report specs.
--
--   local browser = require "browser"
--   local b, why = browser.start()
--   if not b then return pending(why) end        -- inside it(): counted as skipped
--   local page = b:page()                          -- a fresh tab
--   page:navigate("http://127.0.0.1:" .. port .. "/")
--   assert(page:wait("document.querySelector('#fills tr') !== null", 10))
--   local text = page:eval("document.title")
--   page:screenshot("/tmp/shot.png")
--   b:close()                                      -- always; also kills the process group
--
-- Chromium runs in its own process group (setsid) with a fresh --user-data-dir, so close()
-- can end it and every helper process it forked, by that group's id. When `chromium` is not
-- installed, start() installs Debian's package only on CI as root (CI=true, uid 0); anywhere
-- else it returns nil and the reason, and the spec reports itself pending.
local core = require "polysim.core"
local ploop = require "polysim.loop"

local _M = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function sh_ok(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function find_chromium()
  for _, name in ipairs { os.getenv "POLYSIM_CHROMIUM" or "", "chromium", "chromium-browser" } do
    if name ~= "" and sh_ok("command -v " .. q(name) .. " >/dev/null 2>&1") then return name end
  end
end

local function is_root()
  local p = io.popen("id -u 2>/dev/null")
  local id = p and p:read("l")
  if p then p:close() end
  return id == "0"
end

-- The chromium command, installing Debian's package on CI when root and it is missing.
function _M.find()
  local exe = find_chromium()
  if exe then return exe end
  if os.getenv "CI" == "true" and is_root() and sh_ok("command -v apt-get >/dev/null 2>&1") then
    io.stderr:write("browser.lua: installing Debian's chromium (CI, root)\n")
    sh_ok("(apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) " ..
      ">/dev/null 2>&1")
    exe = find_chromium()
    if exe then return exe end
    return nil, "no chromium (apt-get install chromium failed)"
  end
  return nil, "no chromium (install Debian's chromium package to run this spec)"
end

local FLAGS = {
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
  "--disable-breakpad", "--disable-crash-reporter",
  "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
}

local Browser = {}
Browser.__index = Browser
local Page = {}
Page.__index = Page

-- Drives the loop until pred() holds or `secs` pass; true when it held.
local function wait_for(pred, secs)
  return ploop.run_until(pred, secs)
end

-- start{ width = 1280, height = 900, timeout = 20 } -> browser | nil, why
function _M.start(opts)
  opts = opts or {}
  local exe, why = _M.find()
  if not exe then return nil, why end
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh_ok("mkdir -p " .. q(dir)))
  local args = { q(exe) }
  for _, f in ipairs(FLAGS) do args[#args + 1] = f end
  args[#args + 1] = "--user-data-dir=" .. q(dir)
  args[#args + 1] = ("--window-size=%d,%d"):format(opts.width or 1280, opts.height or 900)
  args[#args + 1] = "about:blank"
  -- setsid: its own process group, whose id is the pid we record.
  local cmd = ("setsid %s >%s 2>&1 </dev/null & echo $! >%s"):format(table.concat(args, " "),
    q(dir .. "/chromium.log"), q(dir .. "/pid"))
  assert(sh_ok(cmd))
  local self = setmetatable({ dir = dir, pid = tonumber(slurp(dir .. "/pid") or ""), next_id = 0,
    waiting = {}, events = {}, closed = false, sessions = {} }, Browser)
  local port, path
  wait_for(function()
    local s = slurp(dir .. "/DevToolsActivePort")
    if s then port, path = s:match("^(%d+)\n(%S+)") end
    return port ~= nil
  end, opts.timeout or 20)
  if not port then
    local log = slurp(dir .. "/chromium.log") or ""
    self:close()
    return nil, "chromium did not open its DevTools port: " .. log:sub(-400)
  end
  local opened, closed_code = false, nil
  self.ws = core.ws_connect {
    url = "ws://127.0.0.1:" .. port .. path,
    max_message = 64 << 20,
    on_open = function() opened = true end,
    on_message = function(text) self:_dispatch(text) end,
    on_close = function(code) closed_code = code or 1006 end,
  }
  if not wait_for(function() return opened or closed_code ~= nil end, 10) or not opened then
    self:close()
    return nil, "cannot connect to chromium's DevTools socket"
  end
  return self
end

function Browser:_dispatch(text)
  local msg = core.json_decode(text)
  if type(msg) ~= "table" then return end
  if msg.id then
    self.waiting[msg.id] = msg
  elseif msg.method then
    local list = self.events
    list[#list + 1] = msg
    if #list > 500 then table.remove(list, 1) end
  end
end

-- One DevTools command; returns its result table, or nil and the error. Blocks (drives the
-- loop) for at most `timeout` seconds.
function Browser:send(method, params, session, timeout)
  if self.closed then return nil, "browser closed" end
  self.next_id = self.next_id + 1
  local id = self.next_id
  local m = { id = id, method = method, params = params or {} }
  if session then m.sessionId = session end
  self.waiting[id] = false
  local ok, err = self.ws:send(core.json_encode(m))
  if not ok then return nil, err end
  if not wait_for(function() return self.waiting[id] end, timeout or 15) then
    self.waiting[id] = nil
    return nil, method .. ": no answer in time"
  end
  local ans = self.waiting[id]
  self.waiting[id] = nil
  if ans.error then return nil, method .. ": " .. tostring(ans.error.message) end
  return ans.result or {}
end

-- A fresh tab (page target) attached in flat mode; returns a page.
function Browser:page()
  local t = assert(self:send("Target.createTarget", { url = "about:blank" }))
  local s = assert(self:send("Target.attachToTarget", { targetId = t.targetId, flatten = true }))
  local page = setmetatable({ b = self, target = t.targetId, session = s.sessionId }, Page)
  assert(page:cmd("Page.enable"))
  assert(page:cmd("Runtime.enable"))
  return page
end

function Page:cmd(method, params, timeout)
  return self.b:send(method, params, self.session, timeout)
end

-- Navigates and waits for the load event.
function Page:navigate(url, timeout)
  local b = self.b
  local mark = #b.events
  local r, err = self:cmd("Page.navigate", { url = url })
  if not r then return nil, err end
  if r.errorText then return nil, "navigate " .. url .. ": " .. r.errorText end
  local loaded = wait_for(function()
    for i = mark + 1, #b.events do
      local e = b.events[i]
      if e.method == "Page.loadEventFired" and e.sessionId == self.session then return true end
    end
    return false
  end, timeout or 15)
  if not loaded then return nil, "navigate " .. url .. ": no load event" end
  return true
end

-- Evaluates a JavaScript expression in the page; returns its value (JSON-able) or nil, err.
function Page:eval(expr, timeout)
  local r, err = self:cmd("Runtime.evaluate", { expression = expr, returnByValue = true,
    awaitPromise = true }, timeout)
  if not r then return nil, err end
  if r.exceptionDetails then
    local ex = r.exceptionDetails
    return nil, "js: " .. tostring(ex.exception and ex.exception.description or ex.text)
  end
  local v = r.result and r.result.value
  if v == nil then return nil end
  return v
end

-- Waits until the expression is truthy in the page (checked every 100 ms, `secs` at most).
-- Returns its value, or nil and the last error.
function Page:wait(expr, secs)
  local deadline = core.monotime() + (secs or 10)
  local last
  while core.monotime() < deadline do
    local v, err = self:eval(expr)
    if v and v ~= core.null then return v end
    last = err
    ploop.run_until(function() return false end, 0.1)
  end
  return nil, "timed out waiting for " .. expr .. (last and (" (" .. last .. ")") or "")
end

-- Writes a PNG screenshot of the viewport (or the whole page with full = true) to path.
function Page:screenshot(path, full)
  local params = { format = "png" }
  if full then params.captureBeyondViewport = true end
  local r, err = self:cmd("Page.captureScreenshot", params, 30)
  if not r then return nil, err end
  local tmp = path .. ".b64"
  local f = assert(io.open(tmp, "wb"))
  f:write(r.data)
  f:close()
  local ok = sh_ok("base64 -d " .. q(tmp) .. " > " .. q(path))
  os.remove(tmp)
  if not ok then return nil, "base64 -d failed" end
  return true
end

-- Closes the DevTools socket and ends chromium (its whole process group), removes the
-- profile directory. Idempotent.
function Browser:close()
  if self.closed then return end
  self.closed = true
  if self.ws then
    pcall(function() self.ws:send(core.json_encode { id = 0, method = "Browser.close" }) end)
    pcall(self.ws.close, self.ws)
  end
  if self.pid then
    -- Give it a moment to exit on Browser.close, then the group gets TERM, then KILL.
    local pid = math.tointeger(self.pid)
    local function alive() -- any live (not zombie) process left in its group
      local p = io.popen("ps -eo pgid=,stat= 2>/dev/null")
      if not p then return false end
      local found = false
      for line in p:lines() do
        local g, st = line:match("^%s*(%d+)%s+(%S+)")
        if tonumber(g) == pid and not st:find("Z", 1, true) then found = true end
      end
      p:close()
      return found
    end
    wait_for(function() return not alive() end, 2)
    if alive() then sh_ok("kill -TERM -- -" .. pid .. " 2>/dev/null") end
    wait_for(function() return not alive() end, 2)
    if alive() then sh_ok("kill -KILL -- -" .. pid .. " 2>/dev/null") end
  end
  sh_ok("rm -rf " .. q(self.dir))
end

return _M
