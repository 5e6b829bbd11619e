-- Bounded FIFO queues drop their oldest element in O(1) (issue 8 #7: table.remove(q, 1)
-- moved every element once the queue was full, O(n^2) over a burst). The operation count is
-- the proof, not a timing: a full queue's push + drop touches a fixed number of slots.
local H = require "helper"
local queue = require "polysim.queue"

describe("bounded queues", function()
  it("a stream's iterator queue keeps the newest max_queue messages, oldest first", function()
    local srv = H.exchange()
    local client = H.client(srv)
    local s <close> = client:prices_stream { max_queue = 3 }
    for i = 1, 5 do s:_deliver { type = "price", n = i } end
    assert.equal(2, s.dropped)
    assert.same({ 3, 4, 5 }, { s().n, s().n, s().n })
    assert.equal(0, s.queue:len())
    s:close()
    srv:close()
  end)

  it("polysim.queue: a push and a drop on a full queue write a fixed number of slots", function()
    local writes = 0
    local q = queue.new()
    local raw = getmetatable(q)
    local Q = raw.__index
    local proxy = setmetatable({}, {
      __index = function(_, k) local v = rawget(q, k); if v ~= nil then return v end; return Q[k] end,
      __newindex = function(_, k, v) writes = writes + 1; rawset(q, k, v) end,
      __len = raw.__len })
    local cap = 1000
    for i = 1, cap do Q.push(proxy, i) end
    writes = 0
    for i = cap + 1, 3 * cap do
      Q.push(proxy, i)
      Q.pop(proxy)
    end
    -- push: tail + slot; pop: slot + head
    assert.equal(2 * cap * 4, writes)
    assert.equal(2 * cap + 1, Q.pop(proxy))
  end)
end)
