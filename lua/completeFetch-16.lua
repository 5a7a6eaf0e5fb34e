--[[
  Completes a batch of active jobs, then fetches up to `max` jobs, in one step: what
  moveToFinished ("completed") does for each completion followed by what moveToActive does
  for each fetch, with the per-step work (meta hash, delayed head, event trimming, stalled
  suspects, drained check, marker) done once instead of once per job. The checks are
  lockCheck's (includes/lock) done for the batch at once; the writes are those of
  includes/finish and includes/fetch, which moveToFinished and moveToActive use.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] number of completions n, ARGV[3] max fetches m,
    ARGV[4] lock ms, ARGV[5] now (ms),
    then per completion 6 values: job id, token, returnvalue JSON, keep count (-1 all,
    0 none, k newest), keep age ms (-1 none), dedup id ("" none: the client read the job's
    hash when it fetched it; the key is released only if it still names this job),
    then m lock tokens, then the worker's name for the pb of the jobs fetched ("" none),
    then the worker's limiter max and its duration ms ("0": none; both always present),
    then, when any completion counts metrics, the workers' metrics.maxDataPoints (0: none;
    includes/metrics): one value for every completion, or one value per completion
  Output:
    {statuses, ids, nextDelayedDue, rateLimitTtl}: statuses has one integer per completion (0 ok,
    -1 no such job, -2 lock missing, -3 not active, -4 pending children, -6 lock held by
    another token, -9 a child failed with failParentOnFailure), ids the jobs fetched, in
    order, each locked with the next token
  Events: completed, drained, waiting (prev delayed) for promotions, active (prev waiting);
  in a parent's queue: waiting (prev waiting-children) or delayed when a child of a flow
  releases its parent (includes/parent)
]]
--- @include "includes/keys"
--- @include "includes/lock"
--- @include "includes/finish"
--- @include "includes/fetch"
--- @include "includes/metrics"

local ndone, maxFetch = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[5])
local meta = redis.call("HMGET", metaKey, "opts.maxLenEvents", "paused", "concurrency", "max",
  "duration")
if meta[1] then
  maxEventsCache = meta[1]
end
trimOnce = true -- (trimEvents at the end)

-- completions: first the checks of complete() for each, with the locks read in one MGET
-- and the pending- and failed-children checks in one EXISTS (an empty set does not exist) ...
local statuses = {}
local finished = {}
local cand, seen = {}, {}
-- each job's key and lock key, built once
local jks, lockKeys, locks = {}, {}, {}
if ndone > 0 then
  for i = 1, ndone do
    local jk = qp .. ARGV[i * 6]
    jks[i] = jk
    lockKeys[i] = jk .. ":lock"
  end
  locks = redis.call("MGET", unpack(lockKeys))
end
local argi = 6
local held = {}
for i = 1, ndone do
  local id, token = ARGV[argi], ARGV[argi + 1]
  argi = argi + 6
  local st = 0
  local cur = locks[i]
  if seen[id] then
    -- a repeated id finds the job finished, as a second complete() would: gone when the
    -- first kept nothing, else no longer active
    st = ARGV[seen[id] * 6 + 3] == "0" and -1 or -3
  elseif cur and cur == token then
    seen[id] = i
    held[#held + 1] = i
  else
    st = lockCheck(id, token) -- a refusal, worded in the contract's order (reads only)
  end
  statuses[i] = st
end
-- ... that each job still exists, in one EXISTS (and one per job only if some are gone) ...
if #held > 0 then
  local keys = {}
  for k, i in ipairs(held) do
    keys[k] = jks[i]
  end
  local all = redis.call("EXISTS", unpack(keys)) == #held
  for _, i in ipairs(held) do
    if all or redis.call("EXISTS", jks[i]) == 1 then
      cand[#cand + 1] = i
    else
      statuses[i] = -1
    end
  end
end
if #cand > 0 then
  local depKeys = {}
  for k, i in ipairs(cand) do
    depKeys[2 * k - 1] = jks[i] .. ":dependencies"
    depKeys[2 * k] = jks[i] .. ":unsuccessful"
  end
  if redis.call("EXISTS", unpack(depKeys)) > 0 then
    local kept = {}
    for k, i in ipairs(cand) do
      if redis.call("SCARD", depKeys[2 * k - 1]) ~= 0 then
        statuses[i] = -4
      elseif redis.call("EXISTS", depKeys[2 * k]) ~= 0 then
        statuses[i] = -9
      else
        kept[#kept + 1] = i
      end
    end
    cand = kept
  end
end
-- (out of memory, a step that records completions is refused before its first change)
if #cand > 0 then
  refuseWhenFull()
end
-- ... then out of the active list. A batch fetched in one step sits together in the list
-- (one LPUSH put it there), its first job deepest. When the completions are such a run, it is
-- cut out by moving the shorter side of the list around it (with many batching workers the
-- list is long, but a batch is completed in about the order batches were fetched, so it sits
-- near the tail); otherwise its entries are overwritten with a mark and one LREM drops the
-- marks. Either way: a few calls per batch instead of one scan of the list per job.
local function idOf(i)
  return ARGV[i * 6]
end
local inList = {}
local len = #cand >= 3 and redis.call("LLEN", activeKey) or 0
if len > 2 * #cand + 64 then -- (in a short list, one LREM per job costs less)
  local k = #cand
  local p = redis.call("LPOS", activeKey, idOf(cand[1]), "RANK", "-1")
  local run = false
  if p and p - k + 1 >= 0 then
    local window = redis.call("LRANGE", activeKey, p - k + 1, p)
    run = #window == k
    for j = 1, k do
      if run and window[k + 1 - j] ~= idOf(cand[j]) then
        run = false
      end
    end
  end
  local head, tail = p and p - k + 1 or 0, p and len - 1 - p or 0
  if run and math.min(head, tail) <= 4 * k + 64 then
    if tail <= head then
      local after = tail > 0 and redis.call("LRANGE", activeKey, p + 1, -1) or {}
      if head > 0 then
        redis.call("LTRIM", activeKey, 0, head - 1)
      else
        redis.call("DEL", activeKey)
      end
      if #after > 0 then
        redis.call("RPUSH", activeKey, unpack(after))
      end
    else
      local before = head > 0 and redis.call("LRANGE", activeKey, 0, head - 1) or {}
      redis.call("LTRIM", activeKey, p + 1, -1)
      if #before > 0 then
        local back = {}
        for j = #before, 1, -1 do
          back[#back + 1] = before[j]
        end
        redis.call("LPUSH", activeKey, unpack(back))
      end
    end
    for _, i in ipairs(cand) do
      inList[i] = true
    end
  elseif p then
    local mark = "\0jobq:done"
    local marked = 0
    local from = math.max(0, p - k)
    local window = redis.call("LRANGE", activeKey, from, p + k)
    local at = {}
    for j, v in ipairs(window) do
      at[v] = from + j - 1
    end
    for _, i in ipairs(cand) do
      local idx = at[idOf(i)]
      if idx then
        redis.call("LSET", activeKey, idx, mark)
        marked = marked + 1
        inList[i] = true
      end
    end
    if marked > 0 then
      redis.call("LREM", activeKey, p < len / 2 and marked or -marked, mark)
    end
  end
end
for _, i in ipairs(cand) do
  if not inList[i] then
    inList[i] = redis.call("LREM", activeKey, "-1", idOf(i)) > 0
  end
  if not inList[i] then
    statuses[i] = -3
  end
end
-- ... then the writes of each completion that passed; the keys of removed jobs go in one DEL
local gone = {}
argi = 6
for i = 1, ndone do
  local id, value = ARGV[argi], ARGV[argi + 2]
  local keepCount, keepAge = tonumber(ARGV[argi + 3]), tonumber(ARGV[argi + 4])
  local deid = ARGV[argi + 5]
  argi = argi + 6
  if statuses[i] == 0 then
    finished[#finished + 1] = id
    releaseDedupOnFinish(id, deid, keepCount == 0, ARGV[5])
    local parent = parentOf(jks[i])
    if parent then
      childCompleted(parent, jks[i], value, ARGV[5])
    end
    if keepCount == 0 then
      -- (":dependencies" does not exist: checked above)
      finishedKeys(id, gone)
      gone[#gone + 1] = lockKeys[i]
    else
      redis.call("DEL", lockKeys[i])
      redis.call("HINCRBY", jks[i], "atm", "1")
      recordFinished(id, completedKey, "returnvalue", value, ARGV[5], keepCount, keepAge)
    end
    emit("completed", "jobId", id, "returnvalue", value, "prev", "active")
  end
end
if #gone > 0 then
  redis.call("DEL", unpack(gone))
end
-- metrics: the completions counted, per size of the list
-- (the last values before them: the worker name, the limiter max and duration)
local metricsAt = 8 + 6 * ndone + maxFetch
if #finished > 0 and #ARGV == metricsAt + 1 then
  if tonumber(ARGV[metricsAt + 1]) > 0 then
    countFinished("completed", #finished, ARGV[5], tonumber(ARGV[metricsAt + 1]))
  end
elseif #finished > 0 and #ARGV > metricsAt then
  local per = {}
  for i = 1, ndone do
    local m = tonumber(ARGV[metricsAt + i])
    if statuses[i] == 0 and m > 0 then
      per[m] = (per[m] or 0) + 1
    end
  end
  for m, n in pairs(per) do
    countFinished("completed", n, ARGV[5], m)
  end
end
if #finished > 0 then
  redis.call("SREM", stalledKey, unpack(finished))
  emitDrainedIfIdle()
end

-- fetches
local jobs = {}
local due, wait = 0, 0
if maxFetch > 0 then
  due = promoteIfDue(now)
  -- The jobs' hashes are not returned: the client reads them with HGETALL after this script
  -- (the jobs are locked by then), which costs the server far less than turning each hash
  -- into a Lua table and back.
  workerName = ARGV[argi + maxFetch]
  -- the fetcher's own rate limiter (BullMQ's worker `limiter`), after its name
  jobs, wait = fetchJobs(maxFetch, argi, ARGV[4], ARGV[5], {meta[2], meta[3], meta[4], meta[5]},
    ARGV[argi + maxFetch + 1], ARGV[argi + maxFetch + 2])
end
if #finished > 0 or #jobs > 0 then
  trimEvents()
end
return {statuses, jobs, due, wait}
