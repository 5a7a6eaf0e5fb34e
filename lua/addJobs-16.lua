--[[
  Adds one or more jobs in one step (BullMQ's addStandardJob / addDelayedJob /
  addPrioritizedJob, batched so that a bulk add is all or nothing).

  Input:
    KEYS[1..16] the queue keys (includes/keys.lua)
    ARGV[1] key prefix of the queue, "<prefix>:<queue>:"
    ARGV[2] number of jobs n; then per job 10 arguments:
      customId ("" for a generated id), name, data (JSON), opts (JSON), timestamp,
      delay (ms), priority, lifo ("1"/"0"), dedupId ("" none), dedupTtl (ms, 0 none)
  Output:
    flat array of n pairs {outcome, id}: 0 created, 1 duplicate custom id (the existing id),
    2 deduplicated (the owner's id)
  Events: added, waiting | delayed, duplicated, deduplicated
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/markers"
--- @include "includes/scores"

local n = tonumber(ARGV[2])
local out = {}
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
-- the wait list pushes of all jobs in two calls at the end: LPUSH and RPUSH work on
-- opposite ends, so their order among each other does not matter
local pushFront, pushBack = {}, {}
-- one job of any kind: custom id, deduplication, delay, priority, lifo
local function addOne(i, b)
  local customId, name, data, opts = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local timestamp, delay, priority = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  local lifo, dedupId, dedupTtl = ARGV[b + 7] == "1", ARGV[b + 8], tonumber(ARGV[b + 9])

  local id = customId
  if id == "" then
    id = tostring(firstId + i)
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
      -- stale: the owner vanished without releasing its key
      redis.call("DEL", dk)
      owner = nil
    end
    if owner then
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
        pushFront[#pushFront + 1] = id
      end
      woken = true
      add("waiting", "jobId", id)
    end
  end
  out[#out + 1] = outcome
  out[#out + 1] = id
end
for i = 0, n - 1 do
  local b = 3 + i * 10
  if ARGV[b] == "" and ARGV[b + 8] == "" and ARGV[b + 5] == "0" and ARGV[b + 6] == "0"
      and ARGV[b + 7] == "0" then
    -- the common job (generated id, no dedup, no delay, no priority, FIFO) in the fewest
    -- steps (addOne would do the same for it)
    local id = tostring(firstId + i)
    local name = ARGV[b + 1]
    redis.call("HSET", qp .. id, "name", name, "data", ARGV[b + 2], "opts", ARGV[b + 3],
      "timestamp", ARGV[b + 4], "delay", "0", "priority", "0")
    if n == 1 then
      redis.call("XADD", eventsKey, "MAXLEN", "~", maxLen, "*", "event", "added", "jobId", id,
        "name", name)
      redis.call("XADD", eventsKey, "MAXLEN", "~", maxLen, "*", "event", "waiting", "jobId", id)
    else
      redis.call("XADD", eventsKey, "*", "event", "added", "jobId", id, "name", name)
      redis.call("XADD", eventsKey, "*", "event", "waiting", "jobId", id)
    end
    pushFront[#pushFront + 1] = id
    woken = true
    out[#out + 1] = 0
    out[#out + 1] = id
  else
    addOne(i, b)
  end
end
if #pushFront > 0 then
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
