-- A FIFO queue with two indexes (head, tail): push, pop and peek are O(1), whatever the
-- length; no table.remove(q, 1). Used for the strategy runtime's event queues.
--
--   local q = queue.new()
--   q:push(x); q:push(y)
--   q:pop() --> x        q:len() --> 1        q:last() --> y        q:replace_last(z)
local setmetatable = setmetatable

local _M = {}

local Queue = {}
local mt = { __name = "polysim.Queue", __index = Queue }
mt.__len = function(self) return self.tail - self.head + 1 end

function _M.new()
  return setmetatable({ head = 1, tail = 0 }, mt)
end

function Queue:push(v)
  local t = self.tail + 1
  self.tail = t
  self[t] = v
  return t - self.head + 1
end

-- Removes and returns the oldest element, or nil when empty.
function Queue:pop()
  local h = self.head
  if h > self.tail then return nil end
  local v = self[h]
  self[h] = nil
  if h == self.tail then
    self.head, self.tail = 1, 0 -- empty: restart at 1 so the indexes never grow
  else
    self.head = h + 1
  end
  return v
end

function Queue:peek() return self[self.head] end
function Queue:last() return self[self.tail] end
function Queue:len() return self.tail - self.head + 1 end
function Queue:empty() return self.head > self.tail end

-- Replaces the newest element (conflation: the latest value wins). The queue must not be empty.
function Queue:replace_last(v)
  self[self.tail] = v
end

-- Empties the queue; returns how many elements it held.
function Queue:clear()
  local n = self.tail - self.head + 1
  for i = self.head, self.tail do self[i] = nil end
  self.head, self.tail = 1, 0
  return n
end

-- A bounded ring of the last `cap` values (log tails, recent fills): push overwrites the oldest.
local Ring = {}
local ring_mt = { __name = "polysim.Ring", __index = Ring }

function _M.ring(cap)
  return setmetatable({ cap = cap, n = 0, pos = 0 }, ring_mt)
end

function Ring:push(v)
  local p = self.pos % self.cap + 1
  self.pos = p
  self[p] = v
  if self.n < self.cap then self.n = self.n + 1 end
end

-- The values, oldest first, as a new list.
function Ring:list()
  local out, n, cap = {}, self.n, self.cap
  local start = (self.pos - n) % cap
  for i = 1, n do out[i] = self[(start + i - 1) % cap + 1] end
  return out
end

return _M
