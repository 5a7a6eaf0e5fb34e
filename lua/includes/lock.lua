--[[
  unlock(id, token): the compare-and-swap every transition out of active starts with.
  Every token is checked, "0" included (BullMQ's administrative "0" is not used by jobq).
  Returns 0 when `token` held the lock (the lock is deleted and the id leaves the stalled
  suspects), -2 when the lock is gone (expired), -6 when another token holds it.

  refuseWhenFull(): raises Redis's OOM error, changing nothing, when the server is over its
  maxmemory. Under maxmemory with noeviction, Redis refuses a script at its first command
  flagged deny-oom (ZADD, HSET, XADD, LPUSH, SET, ...) only if the script has written
  nothing yet; after a DEL or LREM everything passes. A script that records an outcome calls
  this before its first write, so that out of memory it is refused whole, whatever path it
  takes, and the worker keeps the outcome and tries again. ZADD XX of a member that is never
  there adds nothing and creates no key.
]]
local function refuseWhenFull()
  redis.call("ZADD", completedKey, "XX", 0, "\0jobq:oom-probe")
end

--[[
  unlock(id, token, recording): as above; `recording` (an outcome is being recorded) checks
  the server has room (refuseWhenFull) once the token matched, before the first change.
]]
local function unlock(id, token, recording)
  local lockKey = qp .. id .. ":lock"
  local cur = redis.call("GET", lockKey)
  if not cur then
    return -2
  end
  if cur ~= token then
    return -6
  end
  if recording then
    refuseWhenFull()
  end
  redis.call("DEL", lockKey)
  redis.call("SREM", stalledKey, id)
  return 0
end
