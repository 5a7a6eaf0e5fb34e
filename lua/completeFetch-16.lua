--[[
  Completes a batch of active jobs, then fetches up to `max` jobs, in one step: what
  moveToFinished ("completed") does for each completion followed by what moveToActive does
  for each fetch, with the per-step work (meta hash, delayed head, event trimming, stalled
  suspects, drained check, marker) done once instead of once per job.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] number of completions n, ARGV[3] max fetches m,
    ARGV[4] lock ms, ARGV[5] now (ms),
    then per completion 5 values: job id, token, returnvalue JSON, keep count (-1 all,
    0 none, k newest), keep age ms (-1 none),
    then m lock tokens
  Output:
    {statuses, jobs, nextDelayedDue}: statuses has one integer per completion (0 ok,
    -1 no such job, -2 lock missing, -3 not active, -4 pending children, -6 lock held by
    another token), jobs is {id1, hash1, id2, hash2, ...} (hash as HGETALL)
  Events: completed, drained, waiting (prev delayed) for promotions, active (prev waiting)
]]
--- @include "includes/keys"
--- @include "includes/ready"
--- @include "includes/remove"

local ndone, maxFetch = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[5])
local meta = redis.call("HMGET", metaKey, "opts.maxLenEvents", "paused", "concurrency", "max",
  "duration")
if meta[1] then
  maxEventsCache = meta[1]
end
-- number arguments of redis.call are passed as the text the client sent (or literals):
-- Lua formats a number argument with printf for every call
local function add(...)
  redis.call("XADD", eventsKey, "*", "event", ...)
end

-- completions: first the checks of complete() for each ...
local statuses = {}
local finished = {}
local cand, candAt, seen = {}, {}, {}
local argi = 6
for i = 1, ndone do
  local id, token = ARGV[argi], ARGV[argi + 1]
  argi = argi + 5
  local jk = qp .. id
  local st = 0
  local cur = redis.call("GET", jk .. ":lock")
  if not cur or seen[id] then
    st = -2 -- a repeated id finds the lock gone, as a second complete() would
  elseif cur ~= token then
    st = -6
  else
    local h = redis.call("HMGET", jk, "timestamp", "deid", "atm")
    if not h[1] and redis.call("EXISTS", jk) == 0 then
      st = -1
    elseif redis.call("SCARD", jk .. ":dependencies") ~= 0 then
      st = -4
    else
      seen[id] = h
      cand[#cand + 1] = i
    end
  end
  statuses[i] = st
end
-- ... then out of the active list. A batch fetched in one step sits together in the list:
-- one scan finds it, its entries are overwritten with a mark and one LREM drops the marks,
-- instead of one scan of the (long, with many batching workers) list per job.
local function idOf(i)
  return ARGV[6 + (i - 1) * 5]
end
local inList = {}
local len = #cand >= 3 and redis.call("LLEN", activeKey) or 0
if len > 2 * #cand + 64 then -- (in a short list, one LREM per job costs less)
  local mark = "\0jobq:done"
  local p = redis.call("LPOS", activeKey, idOf(cand[1]), "RANK", "-1")
  local marked = 0
  if p then
    local from = math.max(0, p - #cand)
    local window = redis.call("LRANGE", activeKey, from, p + #cand)
    local at = {}
    for k, v in ipairs(window) do
      at[v] = from + k - 1
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
-- ... then the writes of each completion that passed
argi = 6
for i = 1, ndone do
  local id, value = ARGV[argi], ARGV[argi + 2]
  local keepCount, keepAge = tonumber(ARGV[argi + 3]), tonumber(ARGV[argi + 4])
  argi = argi + 5
  local st = statuses[i]
  local h = seen[id]
  local jk = qp .. id
  local lockKey = jk .. ":lock"
  if st == 0 then
    finished[#finished + 1] = id
    local deid = h[2]
    if deid then
      local dk = qp .. "de:" .. deid
      if redis.call("PTTL", dk) == -1 and redis.call("GET", dk) == id then
        redis.call("DEL", dk, qp .. "dn:" .. deid)
      end
    end
    if keepCount == 0 then
      redis.call("DEL", jk, lockKey, jk .. ":logs", jk .. ":dependencies", jk .. ":processed",
        jk .. ":failed", jk .. ":unsuccessful")
    else
      redis.call("DEL", lockKey)
      redis.call("ZADD", completedKey, ARGV[5], id)
      redis.call("HSET", jk, "returnvalue", value, "finishedOn", ARGV[5], "atm",
        (tonumber(h[3]) or 0) + 1)
      if keepAge >= 0 then
        local old = redis.call("ZRANGEBYSCORE", completedKey, 0, now - keepAge, "LIMIT", 0, 1000)
        for _, oid in ipairs(old) do
          removeJobKeys(oid)
          redis.call("ZREM", completedKey, oid)
        end
      end
      if keepCount > 0 then
        local extra = redis.call("ZREVRANGE", completedKey, keepCount, -1)
        for _, oid in ipairs(extra) do
          removeJobKeys(oid)
        end
        if #extra > 0 then
          redis.call("ZREMRANGEBYRANK", completedKey, 0, -(keepCount + 1))
        end
      end
    end
    add("completed", "jobId", id, "returnvalue", value, "prev", "active")
  end
end
if #finished > 0 then
  redis.call("SREM", stalledKey, unpack(finished))
  if redis.call("LLEN", activeKey) == 0 and redis.call("LLEN", waitKey) == 0
      and redis.call("ZCARD", prioritizedKey) == 0 then
    add("drained")
  end
end

-- fetches
local jobs = {}
local due = 0
if maxFetch > 0 then
  local first = redis.call("ZRANGE", delayedKey, "0", "0", "WITHSCORES")
  if first[2] then
    due = math.floor(tonumber(first[2]) / 4096)
    if due <= now then
      promoteDue(now)
      due = nextDelayedDue()
    end
  end
  local conc, maxJobs = tonumber(meta[3]), tonumber(meta[4])
  local waitEmpty = false
  local n = 0
  while n < maxFetch and not meta[2] do
    if conc and redis.call("LLEN", activeKey) >= conc then
      break
    end
    if maxJobs then
      local used = tonumber(redis.call("GET", limiterKey) or "0")
      if used >= maxJobs then
        if redis.call("PTTL", limiterKey) > 0 then
          break
        end
        redis.call("DEL", limiterKey)
      end
    end
    local id
    if not waitEmpty then
      id = redis.call("RPOPLPUSH", waitKey, activeKey)
      while id and string.sub(id, 1, 2) == "0:" do
        redis.call("LREM", activeKey, 1, id)
        id = redis.call("RPOPLPUSH", waitKey, activeKey)
      end
      waitEmpty = not id
    end
    if not id then
      local popped = redis.call("ZPOPMIN", prioritizedKey)
      if not popped[1] then
        redis.call("DEL", pcKey)
        break
      end
      id = popped[1]
      redis.call("LPUSH", activeKey, id)
    end
    n = n + 1
    local jk = qp .. id
    if maxJobs and redis.call("HEXISTS", jk, "defa") == 0 then
      if redis.call("INCR", limiterKey) == 1 then
        redis.call("PEXPIRE", limiterKey, math.floor(math.abs(tonumber(meta[5] or "1000"))))
      end
    end
    redis.call("SET", jk .. ":lock", ARGV[argi + n - 1], "PX", ARGV[4])
    redis.call("HINCRBY", jk, "ats", "1")
    redis.call("HSET", jk, "processedOn", ARGV[5])
    jobs[#jobs + 1] = id
    jobs[#jobs + 1] = redis.call("HGETALL", jk)
    add("active", "jobId", id, "prev", "waiting")
  end
  if n > 0 then
    redis.call("ZADD", markerKey, "0", "0")
  end
end
if #finished > 0 or #jobs > 0 then
  redis.call("XTRIM", eventsKey, "MAXLEN", "~", maxEvents())
end
return {statuses, jobs, due}
