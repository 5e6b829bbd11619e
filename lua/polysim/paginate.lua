-- Iterators over paginated lists. A page that fails to load raises its error object (a for
-- loop has no other way to say so, and stopping silently would hide a hole in the data).
local error, ipairs, type = error, ipairs, type

local _M = {}

-- The list in a page: the page itself when it is an array, else the first of the names
-- in `fields` that holds a table (lists that come wrapped: { keys = [...] } or
-- { items = [...] }, as polysim_sdk/_shared.py unwrap_list reads them). The names are the
-- caller's, tried in its order, never guessed from pairs().
local function list_of(p, fields)
  if type(p) ~= "table" then return {} end
  if p[1] ~= nil or not fields then return p end
  for _, f in ipairs(fields) do
    if type(p[f]) == "table" then return p[f] end
  end
  return p
end
_M.list_of = list_of

-- fetch(offset, limit) -> page | nil, err, where page is an array or holds one under one
-- of the names in `fields`.
-- A server may answer fewer items than asked for (it caps limit): a short page is only the
-- end once a page of that size came back short too, or the page was empty.
function _M.offset(fetch, offset, limit, fields)
  local page, i, done, capped = nil, 0, false, false
  return function()
    while true do
      if page and i < #page then
        i = i + 1
        return page[i]
      end
      if done then return nil end
      local p, err = fetch(offset, limit)
      if not p then error(err, 2) end
      page, i = list_of(p, fields), 0
      local n = #page
      offset = offset + n
      if n == 0 then
        done = true
      elseif n < limit then
        -- Either the last page, or the server's cap: ask again with the size it gave.
        if capped then done = true else capped, limit = true, n end
      end
    end
  end
end

-- fetch(cursor) -> { [field] = array, next_cursor = , has_more = } | nil, err.
-- `finished(cursor)` says whether a cursor is the end (default: nil, JSON null, or
-- has_more false); the Polymarket data envelope ends with "LTE=".
function _M.cursor(fetch, field, finished)
  local null = require("polysim.core").null
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
      if cursor == nil or cursor == null or cursor == "" or (finished and finished(cursor))
        or (not finished and not p.has_more) then
        done = true
      end
    end
  end
end

return _M
