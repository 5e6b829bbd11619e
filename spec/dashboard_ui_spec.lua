-- polysim.ui: the one renderer behind report.html and the live dashboard. The page is
-- checked as a browser shows it (headless Chromium, spec/browser.lua): figures in the DOM,
-- a drawn curve, no request leaving the page, hostile strings shown as text.
local ui = require "polysim.ui"
local browser = require "browser"

local T0 = 1764633600 -- 2025-12-02 00:00:00 UTC

local function sample()
  local eq, dd, trades = {}, {}, {}
  local v, peak = 10000, 10000
  for i = 0, 299 do
    v = v + ((i * 7919) % 13 - 6) * 0.9
    if v > peak then peak = v end
    eq[#eq + 1] = { t = T0 + i * 60, v = string.format("%.2f", v) }
    dd[#dd + 1] = { t = T0 + i * 60, v = string.format("%.4f", (v - peak) / peak * 100) }
  end
  for i = 1, 25 do
    trades[i] = { t = T0 + i * 600, market_id = "0xmarket" .. i, side = i % 2 == 0 and "SELL" or "BUY",
      outcome = "Yes", quantity = "20.000000", price = "0.4" .. (i % 10), fee = "0.0100" }
  end
  trades[3].market_id = "</script><script>window.pwned = 1</script><b>x"
  return { title = "spec report <&>", summary = {
      { label = "P&L", value = "+1,234.56" }, { label = "max drawdown", value = "-0.84%" },
      { label = "Sharpe (per minute samples)", value = "1.92" }, { label = "trades", value = "25" } },
    equity = eq, drawdown = dd, trades = trades }
end

local tmp = os.tmpname()

local function write(path, s)
  local f = assert(io.open(path, "w"))
  f:write(s)
  f:close()
end

describe("polysim.ui", function()
  it("render_report gives one self-contained page: nothing to fetch, data kept inside its script", function()
    local html = ui.render_report(sample())
    assert.truthy(html:find("^<!DOCTYPE html>"))
    assert.falsy(html:find("%ssrc%s*="), "an element loads something")
    assert.falsy(html:find("%shref%s*="), "a link to somewhere")
    assert.falsy(html:find("@import", 1, true))
    assert.falsy(html:find("url%("))
    assert.falsy(html:find("https?://"), "an address in the page")
    -- the hostile market id cannot close the data script
    assert.falsy(html:find("</script><script>window.pwned", 1, true))
    assert.truthy(html:find("<\\/script><script>window.pwned", 1, true))
    assert.truthy(html:find("default-src 'none'", 1, true))
  end)

  it("render_report refuses what is not a table, and renders an empty report", function()
    assert.has_error(function() ui.render_report("x") end, "render_report: data must be a table")
    local html = ui.render_report {}
    assert.truthy(html:find('"trades":[]', 1, true), html:sub(1, 200))
  end)

  describe("in a browser", function()
    local b, why
    setup(function() b, why = browser.start() end)
    teardown(function() if b then b:close() end end)

    it("shows the summary, both curves and the trades; sends no request", function()
      if not b then return pending(why) end
      local path = tmp .. "-report.html"
      write(path, ui.render_report(sample()))
      local page = b:page()
      assert(page:cmd("Network.enable"))
      local mark = #b.events
      assert(page:navigate("file://" .. path))
      assert.equal("spec report <&>", page:eval("document.title"))
      local summary = assert(page:eval("document.getElementById('summary').textContent"))
      for _, s in ipairs { "+1,234.56", "-0.84%", "1.92", "Sharpe (per minute samples)" } do
        assert.truthy(summary:find(s, 1, true), summary)
      end
      assert.equal(true, page:eval("document.querySelectorAll('#summary .value')[1].classList.contains('down')"))
      assert.equal("300", page:eval("document.querySelector('#equity-chart svg').getAttribute('data-points')"))
      assert.equal("300", page:eval("document.querySelector('#drawdown-chart svg').getAttribute('data-points')"))
      -- the curve is drawn across the chart, not a dot
      local w = page:eval("document.querySelector('#equity-chart path[fill=none]').getBBox().width")
      assert.is_true(w > 500, tostring(w))
      assert.equal(25, page:eval("document.querySelectorAll('#trades tbody tr').length"))
      assert.equal(true, page:eval("document.getElementById('trades').textContent.indexOf('</script><') >= 0"))
      assert.is_nil(page:eval("window.pwned"))
      local requests = {}
      for i = mark + 1, #b.events do
        local e = b.events[i]
        if e.method == "Network.requestWillBeSent" and e.params.request.url ~= "file://" .. path then
          requests[#requests + 1] = e.params.request.url
        end
      end
      assert.same({}, requests)
      local shot = tmp .. "-report.png"
      assert(page:screenshot(shot))
      local f = assert(io.open(shot, "rb"))
      local png = f:read("a")
      f:close()
      assert.equal("\137PNG", png:sub(1, 4))
      assert.is_true(#png > 20000, "the screenshot looks blank: " .. #png .. " bytes")
      os.remove(path)
      os.remove(shot)
    end)

    it("formats money from decimal strings by their digits, never through floats", function()
      if not b then return pending(why) end
      local page = b:page()
      assert(page:navigate("data:text/html," .. ui.render_report({}):gsub("%%", "%%25"):gsub("#", "%%23")))
      local cases = {
        { "PS.money('1234.565')", "1,234.57" }, { "PS.money('0.005')", "0.01" },
        { "PS.money('-0.004')", "0.00" }, { "PS.signed('-0.005')", "-0.01" },
        { "PS.signed('12')", "+12.00" }, { "PS.signed('0')", "0.00" },
        { "PS.money('999999.995')", "1,000,000.00" }, { "PS.money('1.005')", "1.01" },
        { "PS.money('10000')", "10,000.00" }, { "PS.money('abc')", "\u{2013}" },
        { "PS.plain('20.000000')", "20" }, { "PS.plain('0.410')", "0.41" },
        { "PS.time(1764633600 + 3725)", "01:02:05" }, { "PS.duration(3725)", "1h 02m 05s" },
        { "PS.cls('-0.84%')", "down" }, { "PS.cls('+1,234.56')", "up" },
      }
      for _, c in ipairs(cases) do
        assert.equal(c[2], page:eval(c[1]), c[1])
      end
    end)
  end)
end)
