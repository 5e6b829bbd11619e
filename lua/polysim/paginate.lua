-- Iterators over paginated lists. A page that fails to load raises its error object (a for
-- loop has no other way to say so, and stopping silently would hide a hole in the data).
local error, type = error, type

local _M = {}

-- fetch(offset, limit) -> array page | nil, err. Stops after a short page.
function _M.offset(fetch, offset, limit)
  local page, i, done = nil, 0, false
  return function()
    if page and i < #page then
      i = i + 1
      return page[i]
    end
    if done then return nil end
    local p, err = fetch(offset, limit)
    if not p then error(err, 2) end
    -- Some lists come wrapped ({ keys = [...] }, { events = [...] }): take the one array.
    if type(p) == "table" and p[1] == nil and next(p) ~= nil then
      for _, v in pairs(p) do
        if type(v) == "table" and (v[1] ~= nil or getmetatable(v) == require("polysim.core").array_mt) then
          p = v
          break
        end
      end
    end
    page, i = p, 0
    offset = offset + #p
    if #p < limit then done = true end
    if #p == 0 then return nil end
    i = 1
    return page[1]
  end
end

-- fetch(cursor) -> { [field] = array, next_cursor = , has_more = } | nil, err
function _M.cursor(fetch, field)
  local page, i, cursor, done = nil, 0, nil, false
  return function()
    while true do
      if page and i < #page then
        i = i + 1
        return page[i]
      end
      if done then return nil end
      local p, err = fetch(cursor)
      if not p then error(err, 2) end
      page, i = p[field] or {}, 0
      cursor = p.next_cursor
      if not p.has_more or cursor == nil or cursor == require("polysim.core").null then done = true end
    end
  end
end

return _M
