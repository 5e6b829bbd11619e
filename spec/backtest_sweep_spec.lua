-- polysim backtest --sweep / --jobs / --rank / --plan / --merge (issue 12, "Sweeps and scale"),
-- run as a user runs them: the polysim executable on a recording written here, its workers
-- real child processes.
local core = require "polysim.core"
local bt = require "btdata"

local EXE = os.getenv("POLYSIM_EXE") or "build/bin/polysim"
local q, sh, slurp = bt.q, bt.sh, bt.slurp

local STRAT = [[
local S = {}
function S.on_start(ctx)
  if ctx.params.boom == "1" then error("boom on purpose") end
  ctx.state.n = 0
  local ids = {}
  for m in ctx.client:markets { limit = 10 } do ids[#ids + 1] = m.condition_id end
  ctx:subscribe(ids)
end
-- every EVERY-th price: buy QTY Yes, sell them 3 s (of data time) later
function S.on_price(ctx, msg)
  local st = ctx.state
  st.n = st.n + 1
  local every, qty = tonumber(ctx.params.every or "20"), tonumber(ctx.params.qty or "5")
  if st.n % every == 0 then
    assert(ctx.client:place_order { market_id = msg.market_id, side = "BUY", outcome = "Yes",
      quantity = qty, price = "0.99" })
    ctx:sleep(3)
    ctx.client:place_order { market_id = msg.market_id, side = "SELL", outcome = "Yes", quantity = qty, price = "0.01" }
  end
end
return S
]]

-- The table's rows: { params = "every=10 qty=5", sharpe = "…", pnl = "…", ... } in order.
local function rows(out)
  local list = {}
  for line in out:gmatch("[^\n]+") do
    local rank, rest = line:match("^(%d+)%s+(.*)$")
    if rank then
      local f = {}
      for w in rest:gmatch("%S+") do f[#f + 1] = w end
      if f[1] == "failed" then
        list[#list + 1] = { rank = tonumber(rank), failed = true, params = rest:match("failed%s+(.-):"),
                            error = rest:match(":%s+(.*)$") }
      else
        list[#list + 1] = { rank = tonumber(rank), sharpe = f[1], pnl = f[2], ["return"] = f[3], max_drawdown = f[4],
          trades = f[5], fees = f[6], final_equity = f[7], params = table.concat(f, " ", 8) }
      end
    end
  end
  return list
end

describe("polysim backtest --sweep", function()
  local tmp, data, strat
  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(core.mkdir_p(tmp))
    data, strat = tmp .. "/data.jsonl", tmp .. "/s.lua"
    bt.write(data, bt.dataset(120))
    bt.write(strat, STRAT)
  end)
  teardown(function() os.execute("rm -rf " .. q(tmp)) end)

  local function backtest(args)
    return sh(q(EXE) .. " backtest " .. q(strat) .. " --data " .. q(data) .. " " .. args)
  end

  local GRID = "--sweep every=10,20 --sweep qty=5,50"

  it("prints one row per combination, best Sharpe first, each the combination's own backtest", function()
    local out, err, code = backtest(GRID .. " --jobs 2 --report " .. q(tmp .. "/grid"))
    assert.equal(0, code, err)
    local r = rows(out)
    assert.equal(4, #r, out)
    local seen = {}
    for i, row in ipairs(r) do
      assert.equal(i, row.rank)
      seen[row.params] = row
      if i > 1 then
        assert.truthy(tonumber(r[i - 1].sharpe) >= tonumber(row.sharpe), out)
      end
    end
    for _, p in ipairs { "every=10 qty=5", "every=10 qty=50", "every=20 qty=5", "every=20 qty=50" } do
      assert.is_not_nil(seen[p], p .. " missing:\n" .. out)
    end
    -- a row is what a plain backtest with those --param values reports
    local single, serr, scode = backtest("--param every=20 --param qty=50")
    assert.equal(0, scode, serr)
    local s = core.json_decode(single)
    local row = seen["every=20 qty=50"]
    for _, k in ipairs { "sharpe", "pnl", "return", "max_drawdown", "fees", "final_equity" } do
      assert.equal(s[k], row[k], k)
    end
    assert.equal(tostring(s.trades), row.trades)
    -- the combinations really differ (the parameters reached the workers)
    assert.are_not.equal(seen["every=10 qty=5"].pnl, seen["every=20 qty=50"].pnl)
    -- each combination's report in its own directory, and the ranking beside them
    local sweep = assert(core.json_decode(slurp(tmp .. "/grid/sweep.json")))
    assert.equal("sharpe", sweep.rank_by)
    assert.equal(4, #sweep.results)
    for i, res in ipairs(sweep.results) do
      assert.equal(r[i].params, res.label)
      local rep = assert(core.json_decode(assert(slurp(res.dir .. "/report.json"), res.dir)))
      assert.equal(r[i].sharpe, rep.sharpe)
      assert.truthy(slurp(res.dir .. "/report.html"))
    end
  end)

  it("gives the same table with --jobs 1 and --jobs 2, and on a second run", function()
    local one, e1, c1 = backtest(GRID .. " --jobs 1 --quiet --out " .. q(tmp .. "/one.json"))
    local two, e2, c2 = backtest(GRID .. " --jobs 2 --quiet")
    local again = backtest(GRID .. " --jobs 2 --quiet")
    assert.equal(0, c1, e1)
    assert.equal(0, c2, e2)
    assert.equal(5, select(2, one:gsub("\n", "")))
    assert.equal(one, two)
    assert.equal(two, again)
    assert.equal("", e2)                                  -- --quiet: nothing on stderr
    -- --out: the ranking as JSON, in the table's order
    local j = assert(core.json_decode(assert(slurp(tmp .. "/one.json"))))
    local r = rows(one)
    for i, res in ipairs(j.results) do
      assert.equal(r[i].params, res.label)
      assert.equal(r[i].sharpe, res.report.sharpe)
    end
  end)

  it("ranks by --rank pnl and --rank drawdown", function()
    local out, err, code = backtest(GRID .. " --rank pnl --quiet")
    assert.equal(0, code, err)
    local r = rows(out)
    assert.equal(4, #r)
    for i = 2, 4 do assert.truthy(tonumber(r[i - 1].pnl) >= tonumber(r[i].pnl), out) end
    out = backtest(GRID .. " --rank drawdown --quiet")
    r = rows(out)
    assert.equal(4, #r)
    for i = 2, 4 do
      local a, b = tonumber(r[i - 1].max_drawdown), tonumber(r[i].max_drawdown)
      assert.truthy(a < b or (a == b and tonumber(r[i - 1].pnl) >= tonumber(r[i].pnl)), out)
    end
  end)

  it("--plan prints commands that sh runs anywhere; --merge ranks their reports as the sweep did", function()
    local plan, err, code = backtest(GRID .. " --plan --report " .. q(tmp .. "/plan"))
    assert.equal(0, code, err)
    local cmds = {}
    for line in plan:gmatch("[^\n]+") do cmds[#cmds + 1] = line end
    assert.equal(4, #cmds, plan)
    assert.is_nil(io.open(tmp .. "/plan/sweep.json"))  -- nothing ran
    -- self-contained: run from another directory, one command at a time, in reverse order
    local script = tmp .. "/plan.sh"
    local rev = {}
    for i = #cmds, 1, -1 do rev[#rev + 1] = cmds[i] end
    bt.write(script, "cd / || exit 1\n" .. table.concat(rev, "\n") .. "\n")
    local _, serr, scode = sh("sh " .. q(script))
    assert.equal(0, scode, serr)
    local merged, merr, mcode = sh(q(EXE) .. " backtest --merge " .. q(tmp .. "/plan"))
    assert.equal(0, mcode, merr)
    local swept = backtest(GRID .. " --quiet")
    assert.equal(swept, merged)
    local m = assert(core.json_decode(slurp(tmp .. "/plan/sweep.json")))
    assert.equal(4, #m.results)
    -- the combination directories named one by one (DIR/* also names sweep.json: skipped)
    local each = sh(q(EXE) .. " backtest --merge " .. q(tmp) .. "/plan/* --rank pnl --out " .. q(tmp .. "/m.json"))
    assert.equal(backtest(GRID .. " --rank pnl --quiet"), each)
    assert.equal("pnl", core.json_decode(slurp(tmp .. "/m.json")).rank_by)
  end)

  it("reports a failing combination in its row and exits 1; the others still run", function()
    local out, _, code = backtest("--sweep boom=0,1 --jobs 2 --quiet")
    assert.equal(1, code)
    local r = rows(out)
    assert.equal(2, #r, out)
    assert.equal("boom=0", r[1].params)
    assert.truthy(r[2].failed, out)
    assert.equal("boom=1", r[2].params)
    assert.truthy(r[2].error:find("boom on purpose", 1, true), out)
    assert.falsy(r[2].error:find("traceback", 1, true), out)
  end)

  describe("bad input: a clear error naming it, exit 2, nothing run", function()
    local cases = {
      { "--sweep qty", '--sweep "qty": needs NAME=V1,V2' },
      { "--sweep =5", 'the name "" must be' },
      { "--sweep 'q-x=1'", 'the name "q-x" must be' },
      { "--sweep qty=1,,2", "--sweep qty=1,,2: an empty value" },
      { "--sweep qty=1,", "--sweep qty=1,: an empty value" },
      { "--sweep qty=5,5", '--sweep qty: the value "5" is listed twice' },
      { "--sweep qty=1 --sweep qty=2", "--sweep qty: given twice" },
      { "--sweep qty=1,2 --param qty=3", "--sweep qty: also given as --param qty" },
      { "--sweep qty=1,2 --rank best", '--rank "best": must be sharpe, pnl or drawdown' },
      { "--sweep qty=1,2 --jobs 0", "--jobs 0: must be a whole number >= 1" },
      { "--sweep qty=1,2 --jobs 1.5", "--jobs 1.5: must be a whole number" },
      { "--sweep qty=1,2 --jobs x", "--jobs needs a number" },
      { "--sweep qty=1,2 --plan", "--plan needs --report DIR" },
      { "--sweep qty=1,2 --dashboard", "--dashboard watches one backtest" },
      { "--jobs 2", "--plan, --jobs, --rank and --out go with --sweep" },
      { "--out x.json", "--plan, --jobs, --rank and --out go with --sweep" },
      { "--sweep qty=1,2 --speed 5", "--speed paces a --dashboard replay" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local out, err, code = backtest(c[1])
        assert.equal(2, code, err)
        assert.equal("", out)
        assert.truthy(err:find(c[2], 1, true), err)
      end)
    end
    it("a --data file that does not exist", function()
      local _, err, code = sh(q(EXE) .. " backtest " .. q(strat) .. " --data " .. q(tmp .. "/nope.jsonl") .. " --sweep qty=1,2")
      assert.equal(2, code)
      assert.truthy(err:find("--data " .. tmp .. "/nope.jsonl", 1, true), err)
    end)
    it("--merge of a directory without reports", function()
      local _, err, code = sh(q(EXE) .. " backtest --merge " .. q(tmp))
      assert.equal(2, code)
      assert.truthy(err:find("no report.json in it", 1, true), err)
      _, err, code = sh(q(EXE) .. " backtest --merge " .. q(tmp .. "/absent"))
      assert.equal(2, code)
      assert.truthy(err:find("absent: no such directory", 1, true), err)
    end)
  end)
end)

describe("polysim.backtest.sweep (the grid and the ranking)", function()
  local sweep = require "polysim.backtest.sweep"

  it("makes the cartesian product, the last --sweep varying fastest, with safe directory names", function()
    local g = sweep.grid(sweep.parse({ "a=1,2", "b=x,y z,w/1" }))
    assert.equal(6, #g)
    local labels = {}
    for i, c in ipairs(g) do labels[i] = c.label end
    assert.same({ "a=1 b=x", "a=1 b=y z", "a=1 b=w/1", "a=2 b=x", "a=2 b=y z", "a=2 b=w/1" }, labels)
    assert.equal("2_a-1_b-y_z", g[2].dir)
    assert.equal("3_a-1_b-w_1", g[3].dir)
    local seen = {}
    for _, c in ipairs(g) do assert.is_nil(seen[c.dir]); seen[c.dir] = true end
    local many = {}
    for i = 1, 400 do many[i] = tostring(i) end
    local ok, err = pcall(sweep.grid, sweep.parse({ "a=" .. table.concat(many, ","), "b=" .. table.concat(many, ",") }))
    assert.is_false(ok)
    assert.truthy(err.sweep_error:find("more than 100000 combinations", 1, true))
  end)

  it("ranks best first, ties by the next metric then by the parameters, failed rows last", function()
    local given = {
      { label = "k=1", summary = { sharpe = "1.0", pnl = "5", max_drawdown = "0.2" } },
      { label = "k=2", error = "boom" },
      { label = "k=3", summary = { sharpe = "2.0", pnl = "1", max_drawdown = "0.1" } },
      { label = "k=4", summary = { sharpe = "1.0", pnl = "7", max_drawdown = "0.2" } },
      { label = "k=0", summary = { sharpe = "1.0", pnl = "7", max_drawdown = "0.1" } },
    }
    local function order(by)
      local out = {}
      for i, r in ipairs(sweep.rank(given, by)) do out[i] = r.label end
      return table.concat(out, " ")
    end
    assert.equal("k=3 k=0 k=4 k=1 k=2", order("sharpe"))
    assert.equal("k=0 k=4 k=1 k=3 k=2", order("pnl"))
    assert.equal("k=0 k=3 k=4 k=1 k=2", order("drawdown"))
    local t = sweep.table(sweep.rank(given, "sharpe"))
    assert.truthy(t:find("\n5%s+failed%s+k=2: boom\n$"), t)
  end)
end)
