-- busted output handler: the usual plain-terminal report, plus the counts written to the
-- file named by POLYSIM_COUNTS so that spec/run.lua can print the closing line.
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.plainTerminal"(options)
  busted.subscribe({ "suite", "end" }, function()
    local path = os.getenv "POLYSIM_COUNTS"
    if path then
      local f = assert(io.open(path, "w"))
      f:write(string.format("%d %d %d %d\n", handler.successesCount, handler.failuresCount,
        handler.errorsCount, handler.pendingsCount))
      f:close()
    end
    return nil, true
  end)
  return handler
end
