-- Client methods for health and market data (markets, books, candles, prices, events),
-- mixed into the client's methods table by polysim.client (install).

--- Client methods of health and market data.
-- @submodule polysim.client
local core = require "polysim.core"
local paginate = require "polysim.paginate"
local args = require "polysim.client.args"

local ipairs, pairs = ipairs, pairs
local argerr, check_string, check_int, check_enum = args.argerr, args.check_string, args.check_int, args.check_enum
local check_table, check_bool, check_keys, set = args.check_table, args.check_bool, args.check_keys, args.set
local pathseg = args.pathseg

local _M = {}

function _M.install(methods)
  -- ----------------------------------------------------------------------------------------
  -- health

  --- `GET /v1/health`: the service's health (no key needed).
  -- @treturn table the answer, e.g. `{status = "ok", …}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:health() return self:_call("GET", "/v1/health", { auth = "none" }) end
  --- `GET /v1/health/live`: the service's health (no key needed).
  -- @treturn table the answer, e.g. `{status = "ok", …}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:health_live() return self:_call("GET", "/v1/health/live", { auth = "none" }) end
  --- `GET /v1/health/ready`: the service's health (no key needed).
  -- @treturn table the answer, e.g. `{status = "ok", …}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:ready() return self:_call("GET", "/v1/health/ready", { auth = "none" }) end
  --- `GET /v1/status`: the service's health (no key needed).
  -- @treturn table the answer, e.g. `{status = "ok", …}`
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:status() return self:_call("GET", "/v1/status", { auth = "none" }) end

  -- ---------------------------------------------------------------------------------------
  -- market data

  local MARKETS_OPTS = set { "limit", "offset", "hot_only", "search", "active_only", "page_size", "closed",
    "category" }

  --- `GET /v1/markets`: one page of markets.
  -- @tparam[opt] table p the query
  -- @tparam[opt] int p.limit at most this many markets (1–500)
  -- @tparam[opt] int p.offset skip this many
  -- @tparam[opt] bool p.hot_only only the hot (most traded) markets
  -- @tparam[opt] string p.search text in the question
  -- @tparam[opt] bool p.active_only only active markets
  -- @tparam[opt] bool p.closed closed markets
  -- @tparam[opt] string p.category e.g. `"politics"`, `"crypto"`
  -- @treturn table the page (`{markets = {Market,…}, …}` or a list, as the server sends it)
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
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

  --- Every market matching `p`, as an iterator over `Market` rows (offset paging).
  -- @tparam[opt] table p the query
  -- @tparam[opt] int p.limit at most this many markets (1–500)
  -- @tparam[opt] int p.offset skip this many
  -- @tparam[opt] bool p.hot_only only the hot (most traded) markets
  -- @tparam[opt] string p.search text in the question
  -- @tparam[opt] bool p.active_only only active markets
  -- @tparam[opt] bool p.closed closed markets
  -- @tparam[opt] string p.category e.g. `"politics"`, `"crypto"`
  -- @tparam[opt=100] int p.page_size markets per request
  -- @treturn func an iterator: `for x in client:markets{…} do … end`; pages are fetched as needed
  -- @raise inside the loop, the `Error` of a page that fails; at once, an argument error
  -- @usage for m in client:markets{ hot_only = true } do print(m.question, m.live_price.buy) end
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

  local MARKET_OPTS, MARKET_SPEC = set { "include_book" }, {}

  --- `GET /v1/markets/{condition_id}`: one market.
  -- @tparam string id the market's condition id
  -- @tparam[opt] table p
  -- @tparam[opt] bool p.include_book add the order book
  -- @treturn Market
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error for an id that is not a non-empty string
  function methods:market(id, p)
    local seg = pathseg("market", "condition_id", id)
    -- perf (issue 13): the common call, no options, builds no tables (same request: an
    -- empty query adds nothing to the path); request.call only reads its spec.
    if p == nil then return self:_call("GET", "/v1/markets/" .. seg, MARKET_SPEC) end
    p = check_table("market", "params", p, true)
    check_keys("market", p, MARKET_OPTS)
    return self:_call("GET", "/v1/markets/" .. seg,
      { query = { include_book = check_bool("market", "include_book", p.include_book) } })
  end

  --- `GET /v1/markets/by-slug/{slug}`: one market by its slug.
  -- @tparam string slug
  -- @treturn Market
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:market_by_slug(slug)
    return self:_call("GET", "/v1/markets/by-slug/" .. pathseg("market_by_slug", "slug", slug))
  end

  --- `GET /v1/markets-by-token/{token_id}`: the market of an outcome token.
  -- @tparam string token_id
  -- @treturn Market
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:market_by_token(token_id)
    return self:_call("GET", "/v1/markets-by-token/" .. pathseg("market_by_token", "token_id", token_id))
  end

  --- `GET /v1/markets/{id}/book`: the order book of one outcome.
  -- @tparam string id the market's condition id
  -- @tparam[opt] table p
  -- @tparam[opt="Yes"] string p.outcome the outcome's label
  -- @tparam[opt] int p.depth levels per side (1–1000)
  -- @treturn Book
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:book(id, p)
    local seg = pathseg("book", "condition_id", id)
    p = check_table("book", "params", p, true)
    check_keys("book", p, set { "outcome", "depth" })
    return self:_call("GET", "/v1/markets/" .. seg .. "/book", { query = {
      outcome = check_string("book", "outcome", p.outcome, true),
      depth = check_int("book", "depth", p.depth, 1, 1000),
    } })
  end

  --- `GET /v1/book?token_id=`: the order book of an outcome token.
  -- @tparam string token_id
  -- @treturn Book
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  function methods:book_by_token(token_id)
    check_string("book_by_token", "token_id", token_id)
    return self:_call("GET", "/v1/book", { query = { token_id = token_id } })
  end

  local INTERVALS = { "1h", "6h", "1d", "1w", "max" }
  --- `GET /v1/markets/{id}/candles`: price candles.
  -- @tparam string id the market's condition id
  -- @tparam[opt] table p
  -- @tparam[opt] string p.interval `"1h"`, `"6h"`, `"1d"`, `"1w"` or `"max"`
  -- @treturn table the candles as the server sends them
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:candles(id, p)
    local seg = pathseg("candles", "condition_id", id)
    p = check_table("candles", "params", p, true)
    check_keys("candles", p, set { "interval" })
    return self:_call("GET", "/v1/markets/" .. seg .. "/candles",
      { query = { interval = check_enum("candles", "interval", p.interval, INTERVALS, true) } })
  end

  --- `POST /v1/prices/batch`: the prices of up to 50 markets in one call.
  -- @tparam {string,...} ids 1 to 50 condition ids
  -- @treturn table rows `{condition_id, buy, sell, outcomes, source}` (`buy`/`sell`: the Yes
  --   and No prices)
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error for an empty list, more than 50 ids, or an id that is not a string
  function methods:prices(ids)
    check_table("prices", "market_ids", ids)
    if #ids == 0 or #ids > 50 then argerr("prices", "market_ids must hold 1 to 50 ids") end
    local list = core.array {}
    for i, id in ipairs(ids) do list[i] = check_string("prices", "market_ids[" .. i .. "]", id) end
    return self:_call("POST", "/v1/prices/batch", { body = { market_ids = list } })
  end

  --- `GET /v1/events`: one page of events (groups of markets).
  -- @tparam[opt] table p
  -- @tparam[opt] int p.limit 1–500
  -- @tparam[opt] int p.offset
  -- @treturn table the page
  -- @treturn[2] nil
  -- @treturn[2] Error err why it failed (`polysim.errors`)
  -- @raise an argument error at the caller's line (a wrong type, an unknown option: did you mean …)
  function methods:events_page(p)
    p = check_table("events_page", "params", p, true)
    check_keys("events_page", p, set { "limit", "offset" })
    return self:_call("GET", "/v1/events", { query = {
      limit = check_int("events_page", "limit", p.limit, 1, 500),
      offset = check_int("events_page", "offset", p.offset, 0),
    } })
  end

  --- Every event, as an iterator (offset paging).
  -- @tparam[opt] table p `limit`, `offset`, `page_size` (100)
  -- @treturn func an iterator: `for x in client:events{…} do … end`; pages are fetched as needed
  -- @raise inside the loop, the `Error` of a page that fails; at once, an argument error
  function methods:events(p)
    p = check_table("events", "params", p, true)
    check_keys("events", p, set { "limit", "offset", "page_size" })
    return paginate.offset(function(offset, limit)
      return self:events_page { offset = offset, limit = limit }
    end, p.offset or 0, p.page_size or p.limit or 100, { "events", "items" })
  end
end

return _M
