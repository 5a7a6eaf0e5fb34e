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
--- @include "includes/failure"

local function retryOne(id)
  redis.call("HDEL", qp .. id, "finishedOn", "processedOn", "failedReason")
  makeReady(id, jobIsLifo(id))
  emit("waiting", "jobId", id, "prev", "failed")
end
local id = ARGV[2]
if id ~= "" then
  if redis.call("EXISTS", qp .. id) == 0 then
    return -1
  end
  if redis.call("ZREM", failedKey, id) == 0 then
    return -3
  end
  retryOne(id)
  return 1
end
local ids = redis.call("ZRANGE", failedKey, 0, -1)
for _, fid in ipairs(ids) do
  redis.call("ZREM", failedKey, fid)
  retryOne(fid)
end
return #ids
