--[[
  Removes up to `limit` jobs of one state older than a grace period (BullMQ's cleanJobsInSet):
  age is finishedOn, else processedOn, else timestamp; active jobs only when unlocked;
  pending scheduler iterations are kept. Idempotent in effect.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] state, ARGV[3] grace ms, ARGV[4] limit (0: all), ARGV[5] now
  Output:
    the ids removed
  Events: cleaned (count)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/state"
--- @include "includes/remove"
--- @include "includes/scheduler"

local state, grace, limit, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local key = stateKeys[state]
if not key then
  return {}
end
local cutoff = now - grace
local candidates
if state == "completed" or state == "failed" then
  if limit > 0 then
    candidates = redis.call("ZRANGEBYSCORE", key, 0, cutoff, "LIMIT", 0, limit)
  else
    candidates = redis.call("ZRANGEBYSCORE", key, 0, cutoff)
  end
elseif stateIsList[state] then
  candidates = redis.call("LRANGE", key, 0, -1)
  local rev = {}
  for i = #candidates, 1, -1 do
    rev[#rev + 1] = candidates[i]
  end
  candidates = rev
else
  candidates = redis.call("ZRANGE", key, 0, -1)
end
local removed = {}
for _, id in ipairs(candidates) do
  if limit > 0 and #removed >= limit then
    break
  end
  local jk = qp .. id
  local t = redis.call("HMGET", jk, "finishedOn", "processedOn", "timestamp")
  local age = tonumber(t[1] or t[2] or t[3] or "0")
  local ok = age <= cutoff and not isCurrentIteration(id)
  if ok and state == "active" and redis.call("EXISTS", jk .. ":lock") == 1 then
    ok = false
  end
  if ok then
    takeOut(id, state)
    redis.call("SREM", stalledKey, id)
    removeJobKeys(id)
    removed[#removed + 1] = id
  end
end
emit("cleaned", "count", #removed)
return removed
