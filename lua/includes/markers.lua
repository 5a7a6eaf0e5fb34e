--[[
  Queue state and worker wake-up markers.
  isBlocked(): paused, or a global concurrency reached.
  wakeWorkers(): marker "0" (work is ready) unless blocked.
  markNextDelayed(): marker "1" scored with the due time of the earliest delayed job.
]]
local function isBlocked()
  if redis.call("HEXISTS", metaKey, "paused") == 1 then
    return true
  end
  local conc = redis.call("HGET", metaKey, "concurrency")
  if conc and redis.call("LLEN", activeKey) >= tonumber(conc) then
    return true
  end
  return false
end
local function wakeWorkers()
  if not isBlocked() then
    redis.call("ZADD", markerKey, 0, "0")
  end
end
local function nextDelayedDue()
  local first = redis.call("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  if first[2] then
    return math.floor(tonumber(first[2]) / 4096)
  end
  return 0
end
local function markNextDelayed()
  local first = redis.call("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  if first[2] then
    redis.call("ZADD", markerKey, tonumber(first[2]) / 4096, "1")
  end
end
