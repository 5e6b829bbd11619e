-- Replaces README.md's `polysim --help` block (```text from "usage: polysim <command>" to
-- the closing fence) with what the command prints now; `make man` runs it after the man
-- page, so a new flag reaches the README and docs/polysim.1 with one command.
local options = require "polysim.cli.options"

local f = assert(io.open("README.md"))
local text = f:read("a")
f:close()
local a, b = text:find("```text\nusage: polysim <command>.-```")
assert(a, "README.md has no polysim --help block")
local fresh = "```text\n" .. options.main_usage() .. "```"
text = text:sub(1, a - 1) .. fresh .. text:sub(b + 1)
f = assert(io.open("README.md", "w"))
f:write(text)
f:close()
