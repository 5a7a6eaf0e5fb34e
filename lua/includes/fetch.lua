--[[
  The fetch side of a step, written once for moveToActive (one job) and completeFetch (a
  batch). Number arguments of redis.call go as the text the client sent (ARGV) or as
  literals: Lua formats a number argument with printf on every call.

  takeReady(room): moves up to `room` ready jobs to the active list and returns their ids in
  the order they are taken: the oldest of the wait list first (its tail; ids of markers of
  very old BullMQ versions, "0:...", are dropped), then the prioritized set (lowest score
  first; the priority counter is deleted once the set is found empty). One LRANGE and
  LTRIM, one ZPOPMIN and one LPUSH whatever the count; the active list ends as one RPOPLPUSH
  per job would leave it.

  limiterWait(maxJobs): ms until the global rate limiter lets another job start, 0 for now
  (a full window whose key has no time left is over: deleted).

  startJob(id, token, lockMs, now, duration): locks the job with `token` for `lockMs`,
  counts the attempt (ats), stamps processedOn and, when the script set `workerName` (not
  ""), the fetching worker's name (pb), and emits `active`; with a rate limiter
  (`duration` the window, nil for none) a job that will run counts against it (a job
  marked for deferred failure, `defa`, does not, as in BullMQ 6).

  promoteIfDue(now): promotes the delayed jobs due at `now` (promoteDue) if the earliest is
  due, and returns the due time of the earliest delayed job left (0: none).

  fetchJobs(max, tokenAt, lockMs, now, meta, wMax, wDuration): the fetch of a step: up to
  `max` jobs, job k locked with ARGV[tokenAt + k - 1]; `meta` is HMGET meta "paused",
  "concurrency", "max", "duration"; wMax, wDuration the fetching worker's own limiter ("0":
  none). BullMQ's rule: the rate limit in force is the queue's `max`, else the worker's; its
  window the worker's `duration`, else the queue's. The rate limiter is checked first (a
  full window stops the fetch even when paused), then pause and the global concurrency; with
  a rate limit in force each job is counted as it is taken. Wakes the next idle worker when
  more is ready. Returns the ids and the limiter's wait (ms, 0 unless it stopped the fetch).
]]
--- @include "events"
--- @include "markers"
--- @include "ready"

local workerName -- set by the script from its arguments: the fetcher's name, "" for none

local function takeReady(room)
  local ids = {}
  while #ids < room do
    local want = room - #ids
    local tail = redis.call("LRANGE", waitKey, -want, -1)
    if #tail > 0 then
      redis.call("LTRIM", waitKey, 0, -(#tail + 1))
    end
    for k = #tail, 1, -1 do
      if string.sub(tail[k], 1, 2) ~= "0:" then
        ids[#ids + 1] = tail[k]
      end
    end
    if #tail < want then
      break
    end
  end
  if #ids < room then
    local popped = redis.call("ZPOPMIN", prioritizedKey, room - #ids)
    for k = 1, #popped, 2 do
      ids[#ids + 1] = popped[k]
    end
    if #ids < room then
      redis.call("DEL", pcKey)
    end
  end
  if #ids > 0 then
    redis.call("LPUSH", activeKey, unpack(ids))
  end
  return ids
end

local function limiterWait(maxJobs)
  local used = tonumber(redis.call("GET", limiterKey) or "0")
  if used >= maxJobs then
    local ttl = redis.call("PTTL", limiterKey)
    if ttl > 0 then
      return ttl
    end
    redis.call("DEL", limiterKey)
  end
  return 0
end

local function startJob(id, token, lockMs, now, duration)
  local jk = qp .. id
  if duration and redis.call("HEXISTS", jk, "defa") == 0 then
    if redis.call("INCR", limiterKey) == 1 then
      redis.call("PEXPIRE", limiterKey, math.floor(math.abs(tonumber(duration) or 1000)))
    end
  end
  redis.call("SET", jk .. ":lock", token, "PX", lockMs)
  redis.call("HINCRBY", jk, "ats", "1")
  if workerName and workerName ~= "" then
    redis.call("HSET", jk, "processedOn", now, "pb", workerName)
  else
    redis.call("HSET", jk, "processedOn", now)
  end
  emit("active", "jobId", id, "prev", "waiting")
end

local function promoteIfDue(now)
  local due = nextDelayedDue()
  if due > 0 and due <= now then
    promoteDue(now)
    due = nextDelayedDue()
  end
  return due
end

local function fetchJobs(max, tokenAt, lockMs, now, meta, wMax, wDuration)
  local started, wait = {}, 0
  local maxJobs = tonumber(meta[3])
  if not maxJobs and tonumber(wMax or "0") > 0 then
    maxJobs = tonumber(wMax)
  end
  if maxJobs then
    wait = limiterWait(maxJobs)
    if wait > 0 then
      return started, wait
    end
  end
  if meta[1] then
    return started, wait
  end
  local room = max
  local conc = tonumber(meta[2])
  if conc then
    room = math.min(room, conc - redis.call("LLEN", activeKey))
  end
  if maxJobs then
    local duration = meta[4] or "1000"
    if tonumber(wDuration or "0") > 0 then
      duration = wDuration
    end
    while #started < room do
      wait = limiterWait(maxJobs)
      if wait > 0 then
        break
      end
      local ids = takeReady(1)
      if #ids == 0 then
        break
      end
      started[#started + 1] = ids[1]
      startJob(ids[1], ARGV[tokenAt + #started - 1], lockMs, now, duration)
    end
  elseif room > 0 then
    started = takeReady(room)
    for k, id in ipairs(started) do
      startJob(id, ARGV[tokenAt + k - 1], lockMs, now, nil)
    end
  end
  -- the next idle worker is woken only if there is more for it: a marker with nothing
  -- behind it wakes a worker for an empty fetch, at the moment this one starts its job
  if #started > 0 and (redis.call("LLEN", waitKey) > 0
      or redis.call("ZCARD", prioritizedKey) > 0) then
    redis.call("ZADD", markerKey, "0", "0")
  end
  return started, wait
end
