--[[
  Finishes an active job for good (BullMQ's moveToFinished): completed, or failed after its
  last attempt. Verifies and drops the lock, applies the keep policy, releases the
  deduplication id and reports `drained` when no work is left (includes/finish, shared
  with completeFetch). A child of a flow updates its parent (includes/parent), which may
  move the parent, in its own queue, out of waiting-children.
  Not idempotent: a repeated call finds the lock gone (-2).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id, ARGV[3] token, ARGV[4] now (ms),
    ARGV[5] "completed" | "failed", ARGV[6] returnvalue JSON | failedReason,
    ARGV[7] keep count (-1 all, 0 none, n newest), ARGV[8] keep age ms (-1 none),
    ARGV[9] the job's attempts option, ARGV[10] the stack limit (includes/failure) if
    ARGV[11] is a stack to append, else "",
    ARGV[12] the worker's metrics.maxDataPoints (0: no metrics; includes/metrics)
  Output:
    0 ok, -1 no such job, -4 pending children, -9 a child failed with failParentOnFailure
    (its `:unsuccessful`; as BullMQ 6, which fails such a parent), -3 not active, -2 lock
    missing, -6 lock held by another token (checked in this order, before any change)
  Events: completed | failed (+ retries-exhausted), drained; in the parent's queue: waiting
  (prev waiting-children) or delayed when a parent is released
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/lock"
--- @include "includes/finish"
--- @include "includes/failure"
--- @include "includes/metrics"

local id, token, now, target, value = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local keepCount, keepAge, attempts = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local jk = qp .. id
if not jobExists(jk) then
  return -1
end
-- (one EXISTS for both: an empty set or zset does not exist)
if target == "completed"
    and redis.call("EXISTS", jk .. ":dependencies", jk .. ":unsuccessful") ~= 0 then
  if redis.call("SCARD", jk .. ":dependencies") ~= 0 then
    return -4
  end
  return -9
end
local taken = takeActive(id, token, true)
if taken ~= 0 then
  return taken
end
if target == "failed" then
  recordFailure(id, value, ARGV[10], ARGV[11])
end
local parent = parentOf(jk)
if parent then
  if target == "failed" then
    childFailed(parent, jk, value, now, keepCount == 0)
  else
    childCompleted(parent, jk, value, now)
  end
end
trimEvents()
releaseDedupOnFinish(id, redis.call("HGET", jk, "deid"), keepCount == 0, now)

local atm = redis.call("HINCRBY", jk, "atm", 1)
if keepCount == 0 then
  redis.call("DEL", unpack(finishedKeys(id, {})))
elseif target == "failed" then
  recordFinished(id, failedKey, "failedReason", value, now, keepCount, keepAge)
  redis.call("HDEL", jk, "defa")
else
  recordFinished(id, completedKey, "returnvalue", value, now, keepCount, keepAge)
end

if target == "failed" then
  emit("failed", "jobId", id, "failedReason", value, "prev", "active")
  if atm >= attempts then
    emit("retries-exhausted", "jobId", id, "attemptsMade", atm)
  end
else
  emit("completed", "jobId", id, "returnvalue", value, "prev", "active")
end
local maxPoints = tonumber(ARGV[12]) or 0
if maxPoints > 0 then
  countFinished(target, 1, now, maxPoints)
end
emitDrainedIfIdle()
return 0
