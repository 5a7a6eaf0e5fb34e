--[[
  Deletes every job, event and setting of the queue in one step; the queue stays usable
  (empty, not paused). Refuses while jobs are active unless forced. Idempotent.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] "1" to force
  Output:
    0 ok, -2 active jobs and not forced
]]
--- @include "includes/keys"
--- @include "includes/remove"

if ARGV[2] ~= "1" and redis.call("LLEN", activeKey) > 0 then
  return -2
end
for _, key in ipairs({activeKey, waitKey, pausedKey}) do
  for _, id in ipairs(redis.call("LRANGE", key, 0, -1)) do
    removeJobKeys(id)
    redis.call("DEL", qp .. id .. ":lock")
  end
end
for _, key in ipairs({prioritizedKey, delayedKey, completedKey, failedKey, waitingChildrenKey}) do
  for _, id in ipairs(redis.call("ZRANGE", key, 0, -1)) do
    removeJobKeys(id)
  end
end
local repeatKey = qp .. "repeat"
for _, sid in ipairs(redis.call("ZRANGE", repeatKey, 0, -1)) do
  redis.call("DEL", repeatKey .. ":" .. sid)
end
redis.call("DEL", repeatKey, qp .. "delay", qp .. "metrics:completed", qp .. "metrics:completed:data",
  qp .. "metrics:failed", qp .. "metrics:failed:data")
redis.call("DEL", waitKey, pausedKey, activeKey, prioritizedKey, pcKey, delayedKey, completedKey,
  failedKey, waitingChildrenKey, stalledKey, stalledCheckKey, markerKey, metaKey, idKey,
  eventsKey, limiterKey)
return 0
