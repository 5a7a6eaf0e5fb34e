--[[
  Pauses or resumes the queue (6.x semantics: jobs stay where they are; the `paused` field
  alone stops fetching). Resume merges a legacy (5.x) paused list into the wait list.
  Idempotent apart from the repeated event.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] "pause" | "resume"
  Output:
    0
  Events: paused | resumed
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/markers"

if ARGV[2] == "pause" then
  redis.call("HSET", metaKey, "paused", 1)
  redis.call("DEL", markerKey)
  emit("paused")
  return 0
end
redis.call("HDEL", metaKey, "paused")
while redis.call("LLEN", pausedKey) > 0 do
  local part = redis.call("LRANGE", pausedKey, 0, 6999)
  redis.call("RPUSH", waitKey, unpack(part))
  redis.call("LTRIM", pausedKey, #part, -1)
end
if redis.call("LLEN", waitKey) + redis.call("ZCARD", prioritizedKey) > 0 then
  wakeWorkers()
else
  markNextDelayed()
end
emit("resumed")
return 0
