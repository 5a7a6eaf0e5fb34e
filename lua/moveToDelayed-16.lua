--[[
  Delays a failed attempt until its retry time (BullMQ's moveToDelayed with the attempt
  counted). Not idempotent (a repeated call finds the lock gone).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id, ARGV[3] token, ARGV[4] now (ms), ARGV[5] due (ms),
    ARGV[6] failedReason, ARGV[7] the stack limit (includes/failure) if ARGV[8] is a
    stack to append, else ""
  Output:
    0 ok, -1 no such job, -3 not active, -2 lock missing, -6 lock held by another token
    (checked in this order, before any change)
  Events: delayed (delay = due time)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/markers"
--- @include "includes/scores"
--- @include "includes/lock"
--- @include "includes/failure"

local id, token, now, due = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local jk = qp .. id
local taken = takeActive(id, token, true)
if taken ~= 0 then
  return taken
end
recordFailure(id, ARGV[6], ARGV[7], ARGV[8])
redis.call("HINCRBY", jk, "atm", 1)
redis.call("HSET", jk, "delay", due - now)
redis.call("ZADD", delayedKey, delayedScore(due), id)
emit("delayed", "jobId", id, "delay", due)
markNextDelayed()
return 0
