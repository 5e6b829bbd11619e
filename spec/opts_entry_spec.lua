-- Every entry point checks its options with polysim.opts.check (issue 8, "five unknown-option
-- loops"): the error names the caller's line and suggests the near name.
local entries = {
  { "host.new", function(o) return require("polysim.host").new(o) end, { ticks = 1 }, "tick" },
  { "strategy.new", function(o) return require("polysim.strategy").new(o) end, { budgte = 1 }, "budget" },
  { "log.new", function(o) return require("polysim.log").new(o) end, { levle = "info" }, "level" },
  { "serve.start", function(o) return require("polysim.serve").start(o) end, { prot = 0 }, "port" },
}

describe("unknown options at the entry points", function()
  for _, e in ipairs(entries) do
    local fname, fn, given, near = e[1], e[2], e[3], e[4]
    it(fname .. " reports the caller's line with a did-you-mean", function()
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, err = pcall(function() return fn(given) end)
      assert.is_false(ok)
      assert.matches(fname .. ": unknown option '", err, 1, true)
      assert.matches("(did you mean `" .. near .. "`?)", err, 1, true)
      assert.matches("opts_entry_spec.lua:" .. line .. ":", err, 1, true)
    end)
  end
end)
