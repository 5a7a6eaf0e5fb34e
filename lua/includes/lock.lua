--[[
  lockCheck(id, token): the checks of every operation on an active job's lock, in the order
  of the contract (include/jobq/sys/backend.h), reading only, so that a refused call changes
  nothing: -1 no such job, -3 the job is not active, -2 its lock is gone (expired), -6
  another token holds it, 0 `token` holds it. Every token is checked, "0" included
  (BullMQ's administrative "0" is not used by jobq). The active list is searched only on a
  refusal, from its tail, where the oldest fetches (the ones finishing first) sit.

  takeActive(id, token, recording): the compare-and-swap every transition out of active
  starts with: lockCheck, then (when 0) the lock is deleted, the id leaves the stalled
  suspects and the active list. Returns lockCheck's answer; nothing changed unless 0.

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

local function lockCheck(id, token)
  local jk = qp .. id
  local cur = redis.call("GET", jk .. ":lock")
  -- a lock key exists only while its job is active (fetch sets it, every way out of active
  -- deletes it), so a held lock answers at once and the searches below are for refusals
  if cur and cur == token and not isQueueKey(jk) then
    return 0
  end
  if not jobExists(jk) then
    return -1
  end
  if not redis.call("LPOS", activeKey, id, "RANK", -1) then
    return -3
  end
  if not cur then
    return -2
  end
  return -6
end

--[[
  takeActive(id, token, recording): as above; `recording` (an outcome is being recorded)
  checks the server has room (refuseWhenFull) once every check passed, before the first
  change.
]]
local function takeActive(id, token, recording)
  local st = lockCheck(id, token)
  if st ~= 0 then
    return st
  end
  if recording then
    refuseWhenFull()
  end
  redis.call("DEL", qp .. id .. ":lock")
  redis.call("SREM", stalledKey, id)
  redis.call("LREM", activeKey, -1, id)
  return 0
end
