-- The `polysim` command as a user meets it (issue 11, cli): every subcommand's --help prints
-- help and starts nothing; the real service is an explicit choice (--live or --base-url),
-- never implied by POLYSIM_API_KEY.
local EXE = os.getenv "POLYSIM_EXE" or "build/bin/polysim"

local function sh(cmd)
  local out = os.tmpname()
  local ok, _, code = os.execute(cmd .. " > " .. out .. " 2>&1")
  local f = assert(io.open(out))
  local text = f:read("a")
  f:close()
  os.remove(out)
  return text, ok and 0 or code
end

describe("polysim COMMAND --help", function()
  for _, cmd in ipairs { "serve", "run", "version", "exec", "help" } do
    for _, flag in ipairs { "--help", "-h" } do
      it(cmd .. " " .. flag .. " prints usage, exits 0 and starts nothing", function()
        -- timeout: before the fix `serve --help` started a server and never returned.
        local extra = cmd == "serve" and " --port 0" or ""
        local text, code = sh("timeout 10 " .. EXE .. " " .. cmd .. " " .. flag .. extra)
        assert.equal(0, code, text)
        assert.matches("usage: polysim", text)
        assert.is_nil(text:find("base_url", 1, true) and text:find("bootstrap_token\":", 1, true))
      end)
    end
  end

  it("polysim --help lists every run flag", function()
    local text = sh(EXE .. " --help")
    for _, flag in ipairs { "--live", "--base-url", "--duration", "--seed", "--tick", "--budget",
                            "--no-reload", "--quiet" } do
      assert.truthy(text:find(flag, 1, true), flag .. " missing from polysim --help")
    end
  end)
end)

describe("polysim run: local unless --live", function()
  local KEY = "ps_live_" .. ("cd"):rep(32)

  it("with POLYSIM_API_KEY set and no --live trades on the in-process local exchange", function()
    local text, code = sh("POLYSIM_API_KEY=" .. KEY .. " timeout 30 " .. EXE ..
      " run examples/mean_reversion.lua --duration 1 --no-status")
    assert.equal(0, code, text)
    assert.matches("local exchange at http://127%.0%.0%.1:%d+", text)
    assert.is_nil(text:find("LIVE", 1, true), text)
    assert.is_nil(text:find("polysimulator.com", 1, true), text)
    assert.is_nil(text:find(KEY, 1, true), "the key leaked")
  end)

  it("host.new with a key and no base_url/live picks the local exchange, not the real API", function()
    local host = require "polysim.host"
    local h = assert(host.new { api_key = KEY, hot_reload = false, status = false, log_sink = function() end })
    local base = h.client.base_url
    h:close()
    assert.matches("^http://127%.0%.0%.1:%d+$", base)
  end)

  it("--live without POLYSIM_API_KEY is refused before anything is sent", function()
    local text, code = sh("POLYSIM_API_KEY= timeout 30 " .. EXE .. " run examples/mean_reversion.lua --live --duration 1")
    assert.equal(2, code, text)
    assert.matches("%-%-live needs", text)
  end)

  it("--base-url to another server is announced with a LIVE banner before the strategy starts", function()
    -- 127.0.0.1:9 (discard) refuses: the run fails, but the banner comes first.
    local text = sh("POLYSIM_API_KEY=" .. KEY .. " timeout 30 " .. EXE ..
      " run examples/mean_reversion.lua --base-url http://127.0.0.1:9 --duration 1 --no-status")
    local banner = text:find("LIVE: orders from this strategy go to http://127.0.0.1:9", 1, true)
    assert.truthy(banner, text)
    assert.is_nil(text:find(KEY, 1, true), "the key leaked")
  end)
end)

describe("polysim run --base-url to a local polysim serve", function()
  it("sends POLYSIM_LOCAL_KEY, so the local key never goes into POLYSIM_API_KEY", function()
    local key = "ps_live_" .. ("4c"):rep(32)
    local other = "ps_live_" .. ("9a"):rep(32)   -- the real service's key: not the local one
    local out = os.tmpname()
    local text, code = sh(([[(
      %s serve --port 0 --tick 0 --api-key %s > %s 2>/dev/null & pid=$!
      for i in $(seq 100); do [ -s %s ] && break; sleep 0.05; done
      url=$(head -n1 %s | sed 's/.*"base_url":"\([^"]*\)".*/\1/')
      POLYSIM_API_KEY=%s POLYSIM_LOCAL_KEY=%s timeout 30 %s run examples/rebalancer.lua --base-url "$url" \
        --duration 1 --no-status --no-reload; rc=$?; kill $pid; exit $rc)]]):format(EXE, key, out, out, out, other, key, EXE))
    os.remove(out)
    assert.equal(0, code, text)
    assert.truthy(text:find("done: cash", 1, true), text)
    assert.is_nil(text:find("INVALID_API_KEY", 1, true), text)
    assert.truthy(text:find("%d+ events, %d+ callbacks, 0 errors"), text)
    assert.is_nil(text:find(key, 1, true), "the key leaked")
  end)
end)

describe("strategy fields", function()
  it("a misspelt field (cancel_on_stp) is reported with the nearest known name", function()
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write("return { cancel_on_stp = true, on_pricee = function() end, threshold = 3 }\n")
    f:close()
    local lines = {}
    local host = require "polysim.host"
    local h = assert(host.new { hot_reload = false, status = false,
      log_sink = function(line) lines[#lines + 1] = line end })
    assert(h:load(path))
    h:close()
    os.remove(path)
    local text = table.concat(lines, "\n")
    assert.matches("unknown field 'cancel_on_stp' %(did you mean 'cancel_on_stop'%?%)", text)
    assert.matches("unknown field 'on_pricee' %(did you mean 'on_price'%?%)", text)
    assert.is_nil(text:find("threshold", 1, true), "a field far from every name is the strategy's own")
  end)
end)
