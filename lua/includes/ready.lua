--[[
  makeReady(id, front): puts job `id` where a ready job of its priority belongs: the wait
  list (at the front when `front`, i.e. RPUSH on the consumers' side) or the prioritized
  zset (at the front of its priority when `front`), then wakes a worker.
]]
--- @include "events"
--- @include "markers"
--- @include "scores"
local function makeReady(id, front)
  local priority = tonumber(redis.call("HGET", qp .. id, "priority") or "0") or 0
  if priority > 0 then
    if front then
      redis.call("ZADD", prioritizedKey, priority * 4294967296, id)
    else
      redis.call("ZADD", prioritizedKey, priorityScore(priority), id)
    end
  elseif front then
    redis.call("RPUSH", waitKey, id)
  else
    redis.call("LPUSH", waitKey, id)
  end
  wakeWorkers()
end
-- Moves every delayed job due at `now` to ready; returns how many moved.
local function promoteDue(now)
  local due = redis.call("ZRANGEBYSCORE", delayedKey, 0, (now + 1) * 4096 - 1, "LIMIT", 0, 1000)
  for _, id in ipairs(due) do
    redis.call("ZREM", delayedKey, id)
    redis.call("HSET", qp .. id, "delay", 0)
    makeReady(id, false)
    emit("waiting", "jobId", id, "prev", "delayed")
  end
  return #due
end
