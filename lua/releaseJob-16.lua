--[[
  Gives an active job back without counting an attempt (BullMQ's moveJobFromActiveToWait):
  to the front of the wait list, or of its priority. Not idempotent.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id, ARGV[3] token
  Output:
    0 ok, -1 no such job, -3 not active, -2 lock missing, -6 lock held by another token
    (checked in this order, before any change)
  Events: waiting (prev active)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/ready"
--- @include "includes/lock"

local id, token = ARGV[2], ARGV[3]
local taken = takeActive(id, token)
if taken ~= 0 then
  return taken
end
makeReady(id, true)
emit("waiting", "jobId", id, "prev", "active")
return 0
