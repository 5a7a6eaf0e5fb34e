--[[
  Deletes every waiting and prioritized job (and delayed ones when asked), with their keys,
  except the pending iteration of each job scheduler. No events. Idempotent.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] "1" to include delayed jobs
  Output:
    the number of jobs removed
]]
--- @include "includes/keys"
--- @include "includes/remove"
--- @include "includes/scheduler"

local removed = 0
local function drainList(key)
  local ids = redis.call("LRANGE", key, 0, -1)
  local kept = {}
  for _, id in ipairs(ids) do
    if isCurrentIteration(id) then
      kept[#kept + 1] = id
    else
      removeJobKeys(id)
      removed = removed + 1
    end
  end
  redis.call("DEL", key)
  if #kept > 0 then
    redis.call("RPUSH", key, unpack(kept))
  end
end
local function drainZset(key)
  local all = redis.call("ZRANGE", key, 0, -1, "WITHSCORES")
  for i = 1, #all, 2 do
    local id = all[i]
    if isCurrentIteration(id) then
      redis.call("ZADD", key, all[i + 1], id)
    else
      redis.call("ZREM", key, id)
      removeJobKeys(id)
      removed = removed + 1
    end
  end
end
drainList(waitKey)
drainList(pausedKey)
drainZset(prioritizedKey)
if ARGV[2] == "1" then
  drainZset(delayedKey)
end
return removed
