--[[
  Makes delayed jobs ready now (BullMQ's promote / promoteJobs, honouring priority).
  Idempotent in effect (a repeated single promote answers -3).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id ("" for every delayed job)
  Output:
    number promoted, -1 no such job, -3 not delayed
  Events: waiting (prev delayed)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/ready"
--- @include "includes/moveset"

local function promoteOne(id)
  redis.call("HSET", qp .. id, "delay", 0)
  makeReady(id, false)
  emit("waiting", "jobId", id, "prev", "delayed")
end
return moveFromSet(delayedKey, ARGV[2], promoteOne)
