-- Client methods for health and market data (markets, books, candles, prices, events),
-- mixed into the client's methods table by polysim.client (install).
local core = require "polysim.core"
local paginate = require "polysim.paginate"
local args = require "polysim.client.args"

local ipairs, pairs = ipairs, pairs
local argerr, check_string, check_int, check_enum = args.argerr, args.check_string, args.check_int, args.check_enum
local check_table, check_bool, check_keys, set = args.check_table, args.check_bool, args.check_keys, args.set
local pathseg = args.pathseg

local _M = {}

function _M.install(methods)
  ---------------------------------------------------------------------------------------------
  -- health

  function methods:health() return self:_call("GET", "/v1/health", { auth = "none" }) end
  function methods:health_live() return self:_call("GET", "/v1/health/live", { auth = "none" }) end
  function methods:ready() return self:_call("GET", "/v1/health/ready", { auth = "none" }) end
  function methods:status() return self:_call("GET", "/v1/status", { auth = "none" }) end

  ---------------------------------------------------------------------------------------------
  -- market data

  local MARKETS_OPTS = set { "limit", "offset", "hot_only", "search", "active_only", "page_size", "closed",
    "category" }

  function methods:markets_page(p)
    p = check_table("markets_page", "params", p, true)
    check_keys("markets_page", p, MARKETS_OPTS)
    return self:_call("GET", "/v1/markets", { query = {
      limit = check_int("markets_page", "limit", p.limit, 1, 500),
      offset = check_int("markets_page", "offset", p.offset, 0),
      hot_only = check_bool("markets_page", "hot_only", p.hot_only),
      search = check_string("markets_page", "search", p.search, true),
      active_only = check_bool("markets_page", "active_only", p.active_only),
      closed = check_bool("markets_page", "closed", p.closed),
      category = check_string("markets_page", "category", p.category, true),
    } })
  end

  -- Iterates over every market matching p, fetching pages of p.page_size (default 100).
  function methods:markets(p)
    p = check_table("markets", "params", p, true)
    check_keys("markets", p, MARKETS_OPTS)
    return paginate.offset(function(offset, limit)
      local q = {}
      for k, v in pairs(p) do q[k] = v end
      q.page_size, q.offset, q.limit = nil, offset, limit
      return self:markets_page(q)
    end, p.offset or 0, p.page_size or p.limit or 100, { "markets", "items" })
  end

  function methods:market(id, p)
    local seg = pathseg("market", "condition_id", id)
    p = check_table("market", "params", p, true)
    check_keys("market", p, set { "include_book" })
    return self:_call("GET", "/v1/markets/" .. seg,
      { query = { include_book = check_bool("market", "include_book", p.include_book) } })
  end

  function methods:market_by_slug(slug)
    return self:_call("GET", "/v1/markets/by-slug/" .. pathseg("market_by_slug", "slug", slug))
  end

  function methods:market_by_token(token_id)
    return self:_call("GET", "/v1/markets-by-token/" .. pathseg("market_by_token", "token_id", token_id))
  end

  function methods:book(id, p)
    local seg = pathseg("book", "condition_id", id)
    p = check_table("book", "params", p, true)
    check_keys("book", p, set { "outcome", "depth" })
    return self:_call("GET", "/v1/markets/" .. seg .. "/book", { query = {
      outcome = check_string("book", "outcome", p.outcome, true),
      depth = check_int("book", "depth", p.depth, 1, 1000),
    } })
  end

  function methods:book_by_token(token_id)
    check_string("book_by_token", "token_id", token_id)
    return self:_call("GET", "/v1/book", { query = { token_id = token_id } })
  end

  local INTERVALS = { "1h", "6h", "1d", "1w", "max" }
  function methods:candles(id, p)
    local seg = pathseg("candles", "condition_id", id)
    p = check_table("candles", "params", p, true)
    check_keys("candles", p, set { "interval" })
    return self:_call("GET", "/v1/markets/" .. seg .. "/candles",
      { query = { interval = check_enum("candles", "interval", p.interval, INTERVALS, true) } })
  end

  -- prices{ id, id, ... } -> { {condition_id, buy, sell, outcomes, source}, ... }
  function methods:prices(ids)
    check_table("prices", "market_ids", ids)
    if #ids == 0 or #ids > 50 then argerr("prices", "market_ids must hold 1 to 50 ids") end
    local list = core.array {}
    for i, id in ipairs(ids) do list[i] = check_string("prices", "market_ids[" .. i .. "]", id) end
    return self:_call("POST", "/v1/prices/batch", { body = { market_ids = list } })
  end

  function methods:events_page(p)
    p = check_table("events_page", "params", p, true)
    check_keys("events_page", p, set { "limit", "offset" })
    return self:_call("GET", "/v1/events", { query = {
      limit = check_int("events_page", "limit", p.limit, 1, 500),
      offset = check_int("events_page", "offset", p.offset, 0),
    } })
  end

  function methods:events(p)
    p = check_table("events", "params", p, true)
    check_keys("events", p, set { "limit", "offset", "page_size" })
    return paginate.offset(function(offset, limit)
      return self:events_page { offset = offset, limit = limit }
    end, p.offset or 0, p.page_size or p.limit or 100, { "events", "items" })
  end
end

return _M
