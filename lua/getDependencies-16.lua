--[[
  Reads a parent's children by what became of them (BullMQ's getDependencies), in one
  consistent read.

  Input:
    KEYS[1..16] the queue keys (includes/keys.lua)
    ARGV[1] key prefix of the queue, ARGV[2] the job id
  Output:
    0 when there is no such job, else {processed (HGETALL :processed: key, result, ...),
    pending (SMEMBERS :dependencies), ignored (HGETALL :failed: key, reason, ...), failed
    (ZRANGE :unsuccessful, oldest first)}
]]
--- @include "includes/keys"

local jk = qp .. ARGV[2]
if not jobExists(jk) then
  return 0
end
return {redis.call("HGETALL", jk .. ":processed"), redis.call("SMEMBERS", jk .. ":dependencies"),
  redis.call("HGETALL", jk .. ":failed"), redis.call("ZRANGE", jk .. ":unsuccessful", 0, -1)}
