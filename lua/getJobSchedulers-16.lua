--[[
  Reads job schedulers in one step: scheduler ARGV[2], or every one ("") by next time.
  Entries of the `repeat` zset without a hash holding `ic` (BullMQ 5's legacy repeatable jobs,
  or leftovers) are skipped, as BullMQ does.

  Input:
    KEYS[1..16] the queue keys (includes/keys.lua)
    ARGV[1] key prefix, ARGV[2] scheduler id ("": all)
  Output: {sid, next time, {field, value, ...}, sid, ...}
]]
--- @include "includes/keys"

local repeatKey = qp .. "repeat"
local ids
if ARGV[2] ~= "" then
  local score = redis.call("ZSCORE", repeatKey, ARGV[2])
  ids = score and {ARGV[2], score} or {}
else
  ids = redis.call("ZRANGE", repeatKey, 0, -1, "WITHSCORES")
end
local out = {}
for i = 1, #ids, 2 do
  local key = repeatKey .. ":" .. ids[i]
  if redis.call("HEXISTS", key, "ic") == 1 then
    out[#out + 1] = ids[i]
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = redis.call("HGETALL", key)
  end
end
return out
