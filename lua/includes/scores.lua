--[[
  Score encodings. Delayed: due * 4096 + n, FIFO among jobs due in the same millisecond.
  Prioritized: priority * 2^32 + (counter mod 2^32), FIFO within one priority.
]]
local function delayedScore(due)
  local low = due * 4096
  local high = low + 4095
  local top = redis.call("ZREVRANGEBYSCORE", delayedKey, high, low, "WITHSCORES", "LIMIT", 0, 1)
  if top[2] then
    local s = tonumber(top[2]) + 1
    if s > high then
      s = high
    end
    return s
  end
  return low
end
local function priorityScore(priority)
  local n = redis.call("INCR", pcKey)
  return priority * 4294967296 + (n % 4294967296)
end
