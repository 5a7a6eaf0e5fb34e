--[[
  Adds one or more jobs in one step (BullMQ's addStandardJob / addDelayedJob /
  addPrioritizedJob, batched so that a bulk add is all or nothing).

  Input:
    KEYS[1..16] the queue keys (includes/keys.lua)
    ARGV[1] key prefix of the queue, "<prefix>:<queue>:"
    ARGV[2] number of jobs n; then per job a tag and its arguments:
      "p" (plain: generated id, no dedup, delay or priority, FIFO): name, data (JSON),
        opts (JSON), timestamp
      "s" (plain, with the name, opts and timestamp of the plain job before it): data
      "j" (any job): customId ("" for a generated id), name, data (JSON), opts (JSON),
        timestamp, delay (ms), priority, lifo ("1"/"0"), dedupId ("" none),
        dedupTtl (ms, 0 none, -1 keepLastIfActive: no expiry, and an add deduplicated while
        the owner is active is stashed to become the next job, includes/dedupnext)
  Output:
    {firstId, then {i, outcome, id} per "j" job}: job i of the call (from 0) is given the
    generated id firstId + i, and a plain job is always created with it, so only the others
    are in the reply. Outcomes: 0 created, 1 duplicate custom id (the existing id),
    2 deduplicated (the owner's id)
  Events: added, waiting | delayed, duplicated, deduplicated
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/markers"
--- @include "includes/scores"
--- @include "includes/dedupnext"

local n = tonumber(ARGV[2])

-- the queue's settings once per call: events length, paused, global concurrency
local meta = redis.call("HMGET", metaKey, "opts.maxLenEvents", "paused", "concurrency")
if meta[1] then
  maxEventsCache = meta[1]
end
local blocked = meta[2] ~= false
if not blocked and meta[3] then
  blocked = redis.call("LLEN", activeKey) >= tonumber(meta[3])
end
local woken = false
local maxLen = maxEvents()
-- one add trims the events as it appends; a bulk add appends, then trims once
local function add(...)
  if n == 1 then
    redis.call("XADD", eventsKey, "MAXLEN", "~", maxLen, "*", "event", ...)
  else
    redis.call("XADD", eventsKey, "*", "event", ...)
  end
end
-- the id counter moves by one per job, custom ids included, as one INCR per job would
local firstId = redis.call("INCRBY", idKey, n) - n + 1
local out = {firstId}
-- the decimal id of job i: tostring formats a Lua number with sprintf("%.14g"); formatting
-- the tens once per ten ids spares the server about a thousand instructions per job
local digits = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
local tens, tensText = -1, ""
local function idOf(i)
  local x = firstId + i
  local t = math.floor(x / 10)
  if t ~= tens then
    tens = t
    tensText = t > 0 and tostring(t) or ""
  end
  return tensText .. digits[x % 10 + 1]
end
-- the wait list pushes of all jobs in two calls at the end: LPUSH and RPUSH work on
-- opposite ends, so their order among each other does not matter
local pushFront, pushBack, nFront = {}, {}, 0
-- one job of any kind: custom id, deduplication, delay, priority, lifo
local function addOne(i, b)
  local customId, name, data, opts = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local timestamp, delay, priority = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  local lifo, dedupId, dedupTtl = ARGV[b + 7] == "1", ARGV[b + 8], tonumber(ARGV[b + 9])

  local id = customId
  if id == "" then
    id = idOf(i)
  end
  local jk = qp .. id
  local outcome = 0
  if customId ~= "" and redis.call("EXISTS", jk) == 1 then
    add("duplicated", "jobId", id)
    outcome = 1
  elseif dedupId ~= "" then
    local dk = qp .. "de:" .. dedupId
    local owner = redis.call("GET", dk)
    if owner and redis.call("PTTL", dk) == -1 and redis.call("EXISTS", qp .. owner) == 0 then
      -- stale: the owner vanished without releasing its key (nor its stash)
      redis.call("DEL", dk, qp .. "dn:" .. dedupId)
      owner = nil
    end
    if owner then
      if dedupTtl < 0 then
        stashIfActive(owner, dedupId, id, name, data, opts)
      end
      add("deduplicated", "jobId", owner, "deduplicationId", dedupId, "deduplicatedJobId", id)
      id = owner
      outcome = 2
    elseif dedupTtl > 0 then
      redis.call("SET", dk, id, "PX", dedupTtl)
    else
      redis.call("SET", dk, id)
    end
  end

  if outcome == 0 then
    if dedupId ~= "" then
      redis.call("HSET", jk, "name", name, "data", data, "opts", opts, "timestamp", ARGV[b + 4],
        "delay", ARGV[b + 5], "priority", ARGV[b + 6], "deid", dedupId)
    else
      -- the numbers as the client sent them: no number formatting in Lua
      redis.call("HSET", jk, "name", name, "data", data, "opts", opts, "timestamp", ARGV[b + 4],
        "delay", ARGV[b + 5], "priority", ARGV[b + 6])
    end
    add("added", "jobId", id, "name", name)
    if delay > 0 then
      local due = timestamp + delay
      redis.call("ZADD", delayedKey, delayedScore(due), id)
      add("delayed", "jobId", id, "delay", due)
      markNextDelayed()
    else
      if priority > 0 then
        redis.call("ZADD", prioritizedKey, priorityScore(priority), id)
      elseif lifo then
        pushBack[#pushBack + 1] = id
      else
        nFront = nFront + 1
        pushFront[nFront] = id
      end
      woken = true
      add("waiting", "jobId", id)
    end
  end
  out[#out + 1] = i
  out[#out + 1] = outcome
  out[#out + 1] = id
end
-- name, opts and timestamp of the last plain job, which an "s" job repeats
local pName, pOpts, pTs
local b = 3
for i = 0, n - 1 do
  local tag = ARGV[b]
  if tag == "p" or tag == "s" then
    -- the common job in the fewest steps (addOne would do the same for it); its id and
    -- outcome are not in the reply, which spares the server a reply per job
    local data
    if tag == "p" then
      pName, data, pOpts, pTs = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
      b = b + 5
    elseif pName then
      data = ARGV[b + 1]
      b = b + 2
    else
      return redis.error_reply("ERR addJobs: job " .. i .. " repeats no plain job")
    end
    local id = idOf(i)
    local name = pName
    redis.call("HSET", qp .. id, "name", name, "data", data, "opts", pOpts, "timestamp", pTs,
      "delay", "0", "priority", "0")
    if n == 1 then
      redis.call("XADD", eventsKey, "MAXLEN", "~", maxLen, "*", "event", "added", "jobId", id,
        "name", name)
      redis.call("XADD", eventsKey, "MAXLEN", "~", maxLen, "*", "event", "waiting", "jobId", id)
    else
      redis.call("XADD", eventsKey, "*", "event", "added", "jobId", id, "name", name)
      redis.call("XADD", eventsKey, "*", "event", "waiting", "jobId", id)
    end
    nFront = nFront + 1
    pushFront[nFront] = id
    woken = true
  else
    addOne(i, b + 1)
    b = b + 11
  end
end
if nFront > 0 then
  redis.call("LPUSH", waitKey, unpack(pushFront))
end
if #pushBack > 0 then
  redis.call("RPUSH", waitKey, unpack(pushBack))
end
if woken and not blocked then
  redis.call("ZADD", markerKey, "0", "0")
end
if n > 1 then
  redis.call("XTRIM", eventsKey, "MAXLEN", "~", maxLen)
end
return out
