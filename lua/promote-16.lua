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

local function promoteOne(id)
  redis.call("HSET", qp .. id, "delay", 0)
  makeReady(id, false)
  emit("waiting", "jobId", id, "prev", "delayed")
end
local id = ARGV[2]
if id ~= "" then
  if redis.call("EXISTS", qp .. id) == 0 then
    return -1
  end
  if redis.call("ZREM", delayedKey, id) == 0 then
    return -3
  end
  promoteOne(id)
  return 1
end
local ids = redis.call("ZRANGE", delayedKey, 0, -1)
for _, did in ipairs(ids) do
  redis.call("ZREM", delayedKey, did)
  promoteOne(did)
end
return #ids
