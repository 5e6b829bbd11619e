-- base_url is parsed once with curl's URL API (core.url_parse) and the plain-http refusal
-- is decided on the host curl connects to (issue 10 item 2): "http://localhost:8080@10.9.9.9"
-- is a connection to 10.9.9.9, and userinfo in base_url is refused outright.
local polysim = require "polysim"
local core = require "polysim.core"
local H = require "helper"

local KEY = "ps_live_" .. ("7c"):rep(32)

describe("base_url", function()
  it("core.url_parse reads a URL as curl does", function()
    local u = assert(core.url_parse "http://localhost:8080@10.9.9.9:8080/x")
    assert.equal("10.9.9.9", u.host)
    assert.equal("localhost", u.user)
    assert.equal(8080, u.port)
    assert.equal("127.0.0.1", assert(core.url_parse "http://2130706433/").host)
    assert.equal("[::1]", assert(core.url_parse "https://[::1]:99/a").host)
    local none, err = core.url_parse "http://"
    assert.is_nil(none)
    assert.is_string(err)
    assert.equal("a%20b%2Fc~d-_.", core.url_escape "a b/c~d-_.")
    -- the all-unreserved fast path (issue 13) and the bytes just outside it
    assert.equal("0xAz09-_.~", core.url_escape "0xAz09-_.~")
    assert.equal("", core.url_escape "")
    assert.equal("12", core.url_escape(12))
    assert.equal("a%00b%2F%40%5B%60%7B%7F%C3%A9", core.url_escape "a\0b/@[`{\127\195\169")
    for c = 0, 255 do -- every byte: kept when unreserved, %XX (as curl writes it) otherwise
      local ch = string.char(c)
      local want = ch:find("^[A-Za-z0-9%-%._~]$") and ch or string.format("%%%02X", c)
      assert.equal("x" .. want .. "y", core.url_escape("x" .. ch .. "y"))
    end
  end)

  it("refuses userinfo, even when it reads like a loopback host", function()
    for _, url in ipairs { "http://localhost:8080@10.9.9.9:8080", "http://127.0.0.1:8080@10.9.9.9:8080",
        "https://user:pw@api.example.com", "http://127.0.0.1@127.0.0.1:9" } do
      H.raises("new: base_url must not contain a user name or password", polysim.new, { base_url = url, api_key = KEY })
    end
  end)

  it("refuses a key over plain http to a non-loopback host curl would connect to", function()
    H.raises("refusing to send the API key over plain http:// to 10.0.0.1", polysim.new,
      { base_url = "http://0x0a.0.0.1:80", api_key = KEY })
    H.raises("refusing to send the API key over plain http:// to example.com", polysim.new,
      { base_url = "http://example.com", api_key = KEY })
    assert.truthy(polysim.new { base_url = "http://2130706433:8000", api_key = KEY }) -- 127.0.0.1
    assert.truthy(polysim.new { base_url = "http://[::1]:8000/", api_key = KEY })
    H.raises("new: base_url must be an http:// or https:// URL", polysim.new, { base_url = "ftp://x" })
    H.raises("new: base_url must not contain a query", polysim.new, { base_url = "https://x/?a=1" })
    H.raises("new: base_url is not a URL", polysim.new, { base_url = "http://" })
  end)

  it("keeps the URL curl normalised, without a trailing slash", function()
    assert.equal("http://127.0.0.1:8000", polysim.new { base_url = "http://127.0.0.1:8000/" }.base_url)
    assert.equal("https://api.example.com/v2", polysim.new { base_url = "https://api.example.com/v2/" }.base_url)
  end)

  it("refuses the attack inside a private network namespace, without a connection", function()
    local f = io.popen("id -u")
    local uid = f:read("l")
    f:close()
    if uid ~= "0" or os.execute("unshare -n true 2>/dev/null") ~= true then
      return pending("needs root and unshare -n (a private network namespace)")
    end
    -- Inside the namespace 10.9.9.9 is a local address with a listener counting
    -- connections: were the check fooled, the key would arrive there.
    local script = [[
      local polysim = require "polysim"
      local core = require "polysim.core"
      local ploop = require "polysim.loop"
      local hits = 0
      local srv = assert(core.serve { host = "10.9.9.9", port = 8080, handler = function()
        hits = hits + 1
        return { status = 200, body = "{}" }
      end })
      local ok, err = pcall(polysim.new, { base_url = "http://localhost:8080@10.9.9.9:8080", api_key = "]] .. KEY .. [[" })
      -- The listener works: a client without a key reaches it.
      local probe = polysim.new { base_url = "http://10.9.9.9:8080", api_key = "", max_retries = 0 }
      assert(probe:health())
      ploop.run_until(function() return true end, 0.05)
      srv:close()
      io.write(ok and "ACCEPTED" or tostring(err):match("new: [^\n]*"), "\n", "hits=", hits - 1, "\n")
    ]]
    local tmp = os.tmpname()
    local fh = assert(io.open(tmp, "w"))
    fh:write(script)
    fh:close()
    local p = io.popen("unshare -n sh -c 'ip link set lo up && ip addr add 10.9.9.9/32 dev lo && " ..
      (arg and arg[-1] or "lua5.4") .. " " .. tmp .. "' 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(tmp)
    assert.matches("new: base_url must not contain a user name or password", out)
    assert.matches("hits=0", out)
  end)
end)
