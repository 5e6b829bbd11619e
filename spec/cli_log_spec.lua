-- `polysim run`'s log flags (issue 11), running the real command on its in-process local
-- exchange: --quiet (before: it did nothing but drop the status line), --no-status,
-- --log-file, --log-level and --log-format json (one object a line; the key redacted).
local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"
local core = require "polysim.core"

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. tmp)

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- a fake key in a log line: every sink must redact it
local FAKE = "ps_live_" .. ("5e"):rep(32)

local strategy = tmp .. "/talk.lua"
do
  local f = assert(io.open(strategy, "w"))
  f:write(([[
return {
  name = "talk",
  on_start = function(ctx)
    ctx.log.debug("DEBUG-LINE")
    ctx.log.info("INFO-LINE")
    ctx.log.warn("WARN-LINE")
    ctx.log.info("key %s")
  end,
}
]]):format(FAKE))
  f:close()
end

-- Runs polysim run on the strategy; returns stderr+stdout and the exit status.
local function run(flags)
  local out = tmp .. "/out"
  local ok, _, code = os.execute(("env -u POLYSIM_API_KEY -u POLYSIM_BASE_URL timeout 60 %s run %s --duration 1 " ..
    "--no-reload %s > %s 2>&1"):format(EXE, strategy, flags, out))
  return slurp(out), ok and 0 or code
end

describe("polysim run log flags", function()
  teardown(function() os.execute("rm -rf " .. tmp) end)

  it("--quiet: no info lines and no status line; warnings still show", function()
    local text, code = run("--quiet")
    assert.equal(0, code, text)
    assert.truthy(text:find("WARN-LINE", 1, true), text)
    assert.is_nil(text:find("INFO", 1, true), text)        -- neither the level nor the line
    assert.is_nil(text:find("local exchange at", 1, true), text)
    assert.is_nil(text:find("done: cash", 1, true), text)
    assert.is_nil(text:find("\27[K", 1, true), text)       -- no status line redraws
  end)

  it("--no-status keeps the log lines", function()
    local text, code = run("--no-status")
    assert.equal(0, code, text)
    assert.truthy(text:find("INFO-LINE", 1, true), text)
    assert.truthy(text:find("done: cash", 1, true), text)
    assert.is_nil(text:find("DEBUG-LINE", 1, true), text)
  end)

  it("--log-level debug shows debug lines, --log-level error hides warnings", function()
    local text = run("--no-status --log-level debug")
    assert.truthy(text:find("DEBUG-LINE", 1, true), text)
    text = run("--no-status --log-level error")
    assert.is_nil(text:find("WARN-LINE", 1, true), text)
    assert.is_nil(text:find("INFO-LINE", 1, true), text)
  end)

  it("--log-file gets every line at the level, even with --quiet; the key redacted", function()
    local file = tmp .. "/run.log"
    local text, code = run("--quiet --log-file " .. file)
    assert.equal(0, code, text)
    local log = assert(slurp(file))
    assert.truthy(log:find("INFO-LINE", 1, true), log)
    assert.truthy(log:find("done: cash", 1, true), log)
    assert.is_nil(text:find("INFO-LINE", 1, true), text)
    assert.is_nil(log:find(FAKE, 1, true), log)
    assert.truthy(log:find("ps_live_<redacted>", 1, true), log)
  end)

  it("--log-format json: one object a line with time, level, strategy, msg; key redacted", function()
    local text, code = run("--no-status --log-format json --dashboard")
    assert.equal(0, code, text)
    local n, saw_strategy = 0, false
    for line in text:gmatch("[^\n]+") do
      local rec = core.json_decode(line)
      assert.equal("table", type(rec), "not JSON: " .. line)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", rec.time)
      assert.truthy(({ debug = 1, info = 1, warn = 1, error = 1 })[rec.level], line)
      assert.equal("string", type(rec.msg))
      if rec.msg == "INFO-LINE" then
        saw_strategy = true
        assert.equal("talk", rec.strategy)
      end
      n = n + 1
    end
    assert.truthy(n >= 5, text)
    assert.is_true(saw_strategy, text)
    assert.truthy(text:find('"msg":"dashboard: http://127.0.0.1:', 1, true), text) -- JSON as well
    assert.is_nil(text:find(FAKE, 1, true), text)
    assert.truthy(text:find("ps_live_<redacted>", 1, true), text)
  end)

  it("host.new{ quiet = true }: the sink gets warnings, not info; log_file gets both", function()
    local file = tmp .. "/host.log"
    local got = {}
    local h = assert(require("polysim.host").new { quiet = true, status = false, hot_reload = false,
      log_file = file, log_sink = function(line, level) got[#got + 1] = level .. " " .. line end })
    assert.is_true(h:load(strategy))
    h:close()
    local all = table.concat(got, "\n")
    assert.truthy(all:find("WARN-LINE", 1, true), all)
    assert.is_nil(all:find("INFO-LINE", 1, true), all)
    local log = assert(slurp(file))
    assert.truthy(log:find("INFO-LINE", 1, true), log)
    assert.truthy(log:find("WARN-LINE", 1, true), log)
  end)

  it("a bad --log-level or --log-format is refused with the choices", function()
    local text, code = run("--log-level loud")
    assert.equal(2, code, text)
    assert.truthy(text:find("--log-level must be debug, info, warn, error", 1, true), text)
    text, code = run("--log-format xml")
    assert.equal(2, code, text)
    assert.truthy(text:find("--log-format must be text, json", 1, true), text)
  end)

  it("a --log-file that cannot be opened is an error naming it", function()
    local text, code = run("--log-file " .. tmp .. "/no/such/dir/x.log")
    assert.equal(1, code, text)
    assert.truthy(text:find("cannot open log file", 1, true), text)
  end)
end)
