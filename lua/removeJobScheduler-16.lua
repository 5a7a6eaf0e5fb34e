--[[
  Removes a job scheduler, as BullMQ 6's removeJobScheduler (bullmq-protocol.md §4.21): its
  hash and its entry in the `repeat` zset, and its pending iteration if that is delayed (event
  removed, prev delayed). An iteration already due or running stays and, its scheduler gone,
  creates no next one.

  Input:
    KEYS[1..16] the queue keys (includes/keys.lua)
    ARGV[1] key prefix, ARGV[2] scheduler id
  Output: 0 removed, 1 no such scheduler
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/remove"

local sid = ARGV[2]
local repeatKey = qp .. "repeat"
local millis = redis.call("ZSCORE", repeatKey, sid)
if millis then
  local id = "repeat:" .. sid .. ":" .. millis
  if redis.call("ZREM", delayedKey, id) == 1 then
    removeJobKeys(id)
    emit("removed", "jobId", id, "prev", "delayed")
  end
end
if redis.call("ZREM", repeatKey, sid) == 1 then
  redis.call("DEL", repeatKey .. ":" .. sid)
  return 0
end
return 1
