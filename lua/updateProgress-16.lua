--[[
  Sets a job's progress (JSON) and reports it. Idempotent apart from the repeated event.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id, ARGV[3] token ("" for no lock check),
    ARGV[4] progress JSON
  Output:
    0 ok, -1 no such job, and with a token -3 not active, -2 lock missing, -6 lock held by
    another token (checked in this order, before any change)
  Events: progress (data)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/lock"

local id, token = ARGV[2], ARGV[3]
local jk = qp .. id
if not jobExists(jk) then
  return -1
end
if token ~= "" then
  local st = lockCheck(id, token)
  if st ~= 0 then
    return st
  end
end
redis.call("HSET", jk, "progress", ARGV[4])
emit("progress", "jobId", id, "data", ARGV[4])
return 0
