--[[
  Lists the jobs of one state: waiting, paused and active in the order they run (the list's
  tail first), prioritized and delayed by score, completed and failed newest first.
  Read-only, idempotent. Hashes that vanished are skipped.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] state name, ARGV[3] offset, ARGV[4] limit (0: all)
  Output:
    array of {id, hashFlat}
]]
--- @include "includes/keys"
--- @include "includes/state"

local state, offset, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = stateKeys[state]
if not key then
  return {}
end
local last = -1
if limit > 0 then
  last = offset + limit - 1
end
local ids = {}
if stateIsList[state] then
  local len = redis.call("LLEN", key)
  local stop = len - 1 - offset
  local start = 0
  if last >= 0 then
    start = len - 1 - last
  end
  if start < 0 then
    start = 0
  end
  if stop >= start then
    local part = redis.call("LRANGE", key, start, stop)
    for i = #part, 1, -1 do
      ids[#ids + 1] = part[i]
    end
  end
elseif state == "completed" or state == "failed" then
  ids = redis.call("ZREVRANGE", key, offset, last)
else
  ids = redis.call("ZRANGE", key, offset, last)
end
local out = {}
for _, id in ipairs(ids) do
  local hash = redis.call("HGETALL", qp .. id)
  if #hash > 0 then
    out[#out + 1] = {id, hash}
  end
end
return out
