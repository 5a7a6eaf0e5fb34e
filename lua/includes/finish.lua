--[[
  The finishing side of a step, written once for moveToFinished (one job) and completeFetch
  (a batch of completions). The checks (includes/lock) come first, in each script.

  releaseDedupOnFinish(id, deid, deleted, now): a finished job releases its deduplication key
  `de:<deid>` if the key still names the job and either has no time to live (BullMQ 6's
  rule on finalization: a key with a TTL deduplicates until it expires) or the job is
  `deleted` as it finishes (keep count 0: a dedup id lasts no longer than its owner, as on
  every backend). Then the add stashed in `dn:<deid>` while the job ran (BullMQ's
  keepLastIfActive), if any, becomes the next job (includes/dedupnext), whether the job
  completed or failed for good, as in BullMQ 6. `now` is the caller's text.

  finishedKeys(id, into): appends the keys of job `id` that go when a finished job is kept
  nowhere (keep count 0): its hash and companions, as BullMQ's removeJobKeys (not its
  dedup key: see above; not its lock: the script has dealt with it).

  recordFinished(id, setKey, field, value, now, keepCount, keepAge): puts the job in
  `setKey` (completed or failed) scored `now`, writes `field` (returnvalue or
  failedReason) and finishedOn, then applies the keep policy to the set: jobs finished
  `keepAge` ms or more ago go (-1: none by age; at most 1000 a step), then all but the
  newest `keepCount` (-1: keep all). `now` is the caller's text.

  emitDrainedIfIdle(): the `drained` event when nothing is waiting, prioritized or active.

  A finished child of a flow updates its parent (includes/parent: childCompleted,
  childFailed), before its own keys may go.
]]
--- @include "events"
--- @include "remove"
--- @include "parent"
--- @include "dedupnext"

local function releaseDedupOnFinish(id, deid, deleted, now)
  if deid and deid ~= "" then
    local dk = qp .. "de:" .. deid
    if (deleted or redis.call("PTTL", dk) == -1) and redis.call("GET", dk) == id then
      redis.call("DEL", dk)
    end
    requeueStashed(deid, now)
  end
end

local function finishedKeys(id, into)
  local jk = qp .. id
  local n = #into
  into[n + 1], into[n + 2], into[n + 3] = jk, jk .. ":logs", jk .. ":dependencies"
  into[n + 4], into[n + 5], into[n + 6] = jk .. ":processed", jk .. ":failed",
    jk .. ":unsuccessful"
  return into
end

local function recordFinished(id, setKey, field, value, now, keepCount, keepAge)
  redis.call("ZADD", setKey, now, id)
  redis.call("HSET", qp .. id, field, value, "finishedOn", now)
  if keepAge >= 0 then
    local old = redis.call("ZRANGEBYSCORE", setKey, 0, tonumber(now) - keepAge, "LIMIT", 0, 1000)
    for _, oid in ipairs(old) do
      removeJobKeys(oid)
      redis.call("ZREM", setKey, oid)
    end
  end
  if keepCount > 0 then
    local extra = redis.call("ZREVRANGE", setKey, keepCount, -1)
    for _, oid in ipairs(extra) do
      removeJobKeys(oid)
    end
    if #extra > 0 then
      redis.call("ZREMRANGEBYRANK", setKey, 0, -(keepCount + 1))
    end
  end
end

local function emitDrainedIfIdle()
  if redis.call("LLEN", waitKey) == 0 and redis.call("LLEN", activeKey) == 0
      and redis.call("ZCARD", prioritizedKey) == 0 then
    emit("drained")
  end
end
