--[[
  Puts a failed attempt back to ready at once (BullMQ's retryJob): the attempt counts.
  Not idempotent (a repeated call finds the lock gone).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id, ARGV[3] token, ARGV[4] now (ms),
    ARGV[5] failedReason, ARGV[6] the stack limit (includes/failure) if ARGV[7] is a
    stack to append, else ""
  Output:
    0 ok, -1 no such job, -3 not active, -2 lock missing, -6 lock held by another token
    (checked in this order, before any change)
  Events: waiting (prev active)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/ready"
--- @include "includes/lock"
--- @include "includes/failure"

local id, token, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local taken = takeActive(id, token, true)
if taken ~= 0 then
  return taken
end
-- (after the checks: a refused call promotes nothing either)
promoteDue(now)
recordFailure(id, ARGV[5], ARGV[6], ARGV[7])
makeReady(id, jobIsLifo(id))
redis.call("HINCRBY", qp .. id, "atm", 1)
emit("waiting", "jobId", id, "prev", "active")
return 0
