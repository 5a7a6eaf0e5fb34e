--[[
  Delays a failed attempt until its retry time (BullMQ's moveToDelayed with the attempt
  counted). Not idempotent (a repeated call finds the lock gone).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id, ARGV[3] token, ARGV[4] now (ms), ARGV[5] due (ms),
    ARGV[6] failedReason, ARGV[7] "1" if ARGV[8] is a stack to append
  Output:
    0 ok, -1 no such job, -2 lock missing, -3 not active, -6 lock held by another token
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
if not jobExists(jk) then
  return -1
end
local unlocked = unlock(id, token, true)
if unlocked ~= 0 then
  return unlocked
end
if redis.call("LREM", activeKey, -1, id) == 0 then
  return -3
end
recordFailure(id, ARGV[6], ARGV[7], ARGV[8])
redis.call("HINCRBY", jk, "atm", 1)
redis.call("HSET", jk, "delay", due - now)
redis.call("ZADD", delayedKey, delayedScore(due), id)
emit("delayed", "jobId", id, "delay", due)
markNextDelayed()
return 0
