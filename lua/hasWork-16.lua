--[[
  Whether a fetch could find work now: not paused (nor at its global concurrency) and a job
  waiting, prioritized or delayed and due. Read-only, idempotent.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] now (ms)
  Output:
    {ready (0/1), due time of the earliest delayed job or 0}
]]
--- @include "includes/keys"
--- @include "includes/markers"

local now = tonumber(ARGV[2])
local due = nextDelayedDue()
if isBlocked() then
  return {0, due}
end
if redis.call("LLEN", waitKey) > 0 or redis.call("ZCARD", prioritizedKey) > 0
    or (due > 0 and due <= now) then
  return {1, due}
end
return {0, due}
