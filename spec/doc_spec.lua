-- The API reference (issue 11): `make doc` builds it with LDoc and no warnings, and every
-- public client method (the client's methods table, enumerated here at run time), every ctx
-- method and every polysim.updown function is in it. Skipped (pending) without LDoc or its
-- Markdown formatter (Debian's lua-ldoc, lua-discount; scripts/deps.sh installs them).
local polysim = require "polysim"

local function ok_cmd(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == true end

local missing
if not ok_cmd("command -v ldoc") then
  missing = "ldoc is not installed (apt-get install lua-ldoc)"
elseif not ok_cmd("lua5.1 -e 'require \"discount\"'") and not ok_cmd("lua5.2 -e 'require \"discount\"'") then
  missing = "lua-discount is not installed (apt-get install lua-discount)"
end

local BUILD = os.getenv("POLYSIM_DOC_BUILD") or "build-doc-spec"

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The names of the public functions of a methods table (not starting with "_").
local function public(t)
  local names = {}
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" and not k:find("^_") then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

describe("make doc", function()
  local out, status, html
  setup(function()
    if missing then return end
    local p = io.popen("make --no-print-directory -s doc BUILD=" .. BUILD .. " 2>&1")
    out = p:read("a")
    status = p:close()
    local parts = {}
    local list = io.popen("ls " .. BUILD .. "/doc/*.html " .. BUILD .. "/doc/*/*.html 2>/dev/null")
    for name in list:lines() do parts[#parts + 1] = read(name) end
    list:close()
    html = table.concat(parts, "\n")
  end)
  teardown(function() os.execute("rm -rf " .. BUILD) end)

  it("builds the reference with no LDoc warning", function()
    if missing then return pending(missing) end
    assert.is_true(status, out)
    assert.truthy(out:find("API reference: " .. BUILD .. "/doc/index.html\n", 1, true), out)
    -- LDoc said nothing but its two progress lines
    local log = assert(read(BUILD .. "/doc.log"))
    assert.matches("^reading configuration from config%.ld\noutput written to [^\n]+\n$", log)
    assert.truthy(read(BUILD .. "/doc/index.html"))
  end)

  it("documents every public method of the client, as client:name", function()
    if missing then return pending(missing) end
    local client = polysim.new { base_url = "http://127.0.0.1:9", api_key = "x" }
    local methods = getmetatable(client).__index
    assert.is_table(methods)
    local names, absent = public(methods), {}
    assert.is_true(#names > 60, "only " .. #names .. " methods found")
    for _, name in ipairs(names) do
      if not html:find("client:" .. name .. "(", 1, true) then absent[#absent + 1] = name end
    end
    assert.same({}, absent)
  end)

  it("documents the strategy ctx API, as ctx:name", function()
    if missing then return pending(missing) end
    local absent = {}
    for _, name in ipairs(public(require("polysim.ctx").methods)) do
      if not html:find("ctx:" .. name .. "(", 1, true) then absent[#absent + 1] = name end
    end
    assert.same({}, absent)
  end)

  it("documents every polysim.updown function and polysim.json", function()
    if missing then return pending(missing) end
    local absent = {}
    for _, name in ipairs(public(require("polysim.updown"))) do
      if not html:find(">" .. name .. "(", 1, true) then absent[#absent + 1] = name end
    end
    for _, name in ipairs { "json.encode", "json.decode", "new" } do
      if not html:find(">" .. name .. "(", 1, true) then absent[#absent + 1] = name end
    end
    assert.same({}, absent)
  end)

  it("documents every public stream method (s:messages too), the host's log options, err.kind", function()
    if missing then return pending(missing) end
    local absent = {}
    for _, name in ipairs(public(require("polysim.stream").mt.__index)) do
      if not html:find("s:" .. name .. "(", 1, true) then absent[#absent + 1] = name end
    end
    for _, name in ipairs { "\"parameter\">log_format<", "\"parameter\">log_file<", "\"parameter\">quiet<", "\"parameter\">log_level<" } do
      if not html:find(name, 1, true) then absent[#absent + 1] = name end
    end
    if not html:find("configuration error", 1, true) then absent[#absent + 1] = "Error.kind" end
    assert.same({}, absent)
  end)

  it("is linked from the README", function()
    assert.truthy(read("README.md"):find("make doc", 1, true))
    assert.truthy(read("README.md"):find("build/doc/index.html", 1, true))
  end)
end)
