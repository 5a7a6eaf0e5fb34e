--[[
  Reads a job and its state in one step. Read-only, idempotent.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id
  Output:
    {} when the job does not exist, else {state, hashFlat}
]]
--- @include "includes/keys"
--- @include "includes/state"

local id = ARGV[2]
if isQueueKey(qp .. id) then
  return {}
end
local hash = redis.call("HGETALL", qp .. id)
if #hash == 0 then
  return {}
end
return {jobState(id), hash}
