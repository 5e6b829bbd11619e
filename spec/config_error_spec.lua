-- A client without a key is a configuration problem, not a network one (issue 11): against
-- a server that is not the local exchange, the call is refused before anything is sent and
-- tostring(err) says "configuration error MISSING_API_KEY", never "transport error".
local polysim = require "polysim"
local core = require "polysim.core"

describe("a missing API key", function()
  local saved = os.getenv "POLYSIM_API_KEY"

  it("against a non-local base_url is a configuration error, and nothing is sent", function()
    local hits = 0
    local srv = assert(core.serve { port = 0, handler = function()
      hits = hits + 1
      return { status = 200, body = "{}" }
    end })
    local base = "http://127.0.0.1:" .. srv:port()
    -- the key comes from POLYSIM_API_KEY when not given: make sure there is none
    local client = polysim.new { base_url = base, api_key = saved and "" or nil }
    local ok, err = client:balance()
    srv:close()
    assert.is_nil(ok)
    assert.equal("MISSING_API_KEY", err.code)
    assert.equal("configuration", err.kind)
    assert.equal(0, hits)
    local line = tostring(err)
    assert.matches("^polysim: configuration error MISSING_API_KEY", line)
    assert.is_nil(line:find("transport error", 1, true), line)
  end)

  it("for https://api.example.com says configuration error too (no DNS, no connection)", function()
    local client = polysim.new { base_url = "https://api.example.com", api_key = saved and "" or nil }
    local _, err = client:markets_page {}
    assert.matches("^polysim: configuration error MISSING_API_KEY", tostring(err))
  end)

  it("a transport failure still says transport error", function()
    local client = polysim.new { base_url = "http://127.0.0.1:9", api_key = "ps_live_" .. ("ab"):rep(32),
      max_retries = 0 }
    local _, err = client:balance()
    assert.matches("^polysim: transport error CONNECTION_REFUSED", tostring(err))
  end)
end)
