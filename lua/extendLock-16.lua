--[[
  Extends the lock of an active job (BullMQ's extendLock) and clears it from the stalled
  suspects. Idempotent: repeating it sets the same token and TTL again.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id, ARGV[3] token, ARGV[4] lock ms
  Output:
    0 ok, -1 no such job, -3 not active, -2 lock missing (expired), -6 held by another
    token (checked in this order, before any change)
]]
--- @include "includes/keys"
--- @include "includes/lock"

local id, token = ARGV[2], ARGV[3]
local lockKey = qp .. id .. ":lock"
local st = lockCheck(id, token)
if st ~= 0 then
  return st
end
-- PEXPIRE, not SET PX: the value is the same, and PEXPIRE (not flagged deny-oom) still runs
-- when the server is over maxmemory, so a worker keeps the locks of jobs whose outcome the
-- full server refuses until it can record them
redis.call("PEXPIRE", lockKey, tonumber(ARGV[4]))
redis.call("SREM", stalledKey, id)
return 0
