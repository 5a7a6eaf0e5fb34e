--[[
  Moves failed jobs back to ready (BullMQ's reprocessJob / retryJobs), clearing finishedOn,
  processedOn and failedReason; attempt counters are kept. Not idempotent for one id (-3).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id ("" for every failed job)
  Output:
    number moved, -1 no such job, -3 not failed
  Events: waiting (prev failed)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/ready"
--- @include "includes/moveset"
--- @include "includes/failure"

local function retryOne(id)
  redis.call("HDEL", qp .. id, "finishedOn", "processedOn", "failedReason")
  makeReady(id, jobIsLifo(id))
  emit("waiting", "jobId", id, "prev", "failed")
end
return moveFromSet(failedKey, ARGV[2], retryOne)
