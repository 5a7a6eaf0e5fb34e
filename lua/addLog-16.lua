--[[
  Appends a log line to a job, keeping the newest `keep` lines. Not idempotent.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id, ARGV[3] line, ARGV[4] keep (0: all)
  Output:
    number of lines kept, -1 no such job
]]
--- @include "includes/keys"

local jk = ARGV[1] .. ARGV[2]
if not jobExists(jk) then
  return -1
end
local n = redis.call("RPUSH", jk .. ":logs", ARGV[3])
local keep = tonumber(ARGV[4])
if keep > 0 then
  redis.call("LTRIM", jk .. ":logs", -keep, -1)
  return math.min(keep, n)
end
return n
