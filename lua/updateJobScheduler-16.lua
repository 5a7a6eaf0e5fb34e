--[[
  Continues a job scheduler after one of its iterations was fetched: creates the next
  iteration, as BullMQ 6 workers do when they fetch one (bullmq-protocol.md §4.21). Nothing
  changes unless the scheduler exists and the fetched job is its pending iteration
  ("repeat:<scheduler id>:<its score in Prepeat>"), so a stale or repeated call is harmless.

  The series goes on while the fetched iteration's count (opts.repeat.count) is below
  opts.repeat.limit and `now` is not past opts.repeat.endDate. The next time: for `every`,
  computed here (the previous time plus every, realigned to the offset if iterations were
  missed); for a cron `pattern`, by the caller, which first calls without it and gets what it
  needs to compute it.

  Input:
    KEYS[1..16] the queue keys (includes/keys.lua)
    ARGV[1] key prefix of the queue, ARGV[2] the fetched job's id, ARGV[3] scheduler id,
    ARGV[4] now (ms), ARGV[5] next time for a pattern scheduler ("": not computed yet)
  Output:
    {0}                 nothing to create (scheduler gone or moved on, limit or end reached)
    {1, id}             next iteration `id` created
    {2, id}             next iteration `id` exists already (event duplicated)
    {3, pattern, tz, startDate, endDate, prevMillis}  a pattern scheduler: call again with the
                        next time after max(now, prevMillis, startDate) ("" for what is unset)
  Events: added, then delayed or waiting; or duplicated
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/markers"
--- @include "includes/scores"
--- @include "includes/ready"

local producerId, sid, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local repeatKey = qp .. "repeat"
local schedKey = repeatKey .. ":" .. sid

local prev = redis.call("ZSCORE", repeatKey, sid)
if not prev then
  return {0}
end
prev = tonumber(prev)
if producerId ~= "repeat:" .. sid .. ":" .. string.format("%d", prev) then
  return {0}
end

-- a JSON value that may be missing, null or text: a number or nil
local function num(v)
  if type(v) == "number" then
    return v
  end
  if type(v) == "string" then
    return tonumber(v)
  end
  return nil
end

-- The iteration's own options carry the repeat settings the series runs with, as Node
-- reads them from the fetched job.
local ok, opts = pcall(cjson.decode, redis.call("HGET", qp .. producerId, "opts") or "{}")
if not ok or type(opts) ~= "table" then
  opts = {}
end
local rep = opts["repeat"]
if type(rep) ~= "table" then
  rep = {}
  opts["repeat"] = rep
end
local count = (num(rep["count"]) or 0) + 1
local limit = num(rep["limit"])
if limit and count > limit then
  return {0}
end
local endDate = num(rep["endDate"])
if endDate and now > endDate then
  return {0}
end

local s = redis.call("HMGET", schedKey, "name", "data", "every", "startDate", "offset", "pattern",
  "tz")
local every = num(s[3]) or num(rep["every"])
local nextMillis
if every and every > 0 then
  nextMillis = prev + every
  if nextMillis < now then
    -- iterations were missed: the first slot after now that keeps the offset
    local offset = num(s[5]) or num(rep["offset"]) or 0
    local aligned = math.floor(now / every) * every + offset
    if aligned <= now then
      aligned = aligned + every
    end
    nextMillis = aligned
  end
  nextMillis = math.floor(nextMillis)
  -- Node keeps a non-zero offset in the next options and drops a zero one
  if not num(rep["offset"]) or num(rep["offset"]) == 0 then
    rep["offset"] = nil
  end
  opts["prevMillis"] = nil
elseif ARGV[5] == "" then
  local pattern = rep["pattern"]
  if type(pattern) ~= "string" then
    pattern = s[6]
  end
  if not pattern then
    return {0}
  end
  local tz = rep["tz"]
  if type(tz) ~= "string" then
    tz = s[7] or ""
  end
  local startDate = num(rep["startDate"]) or num(s[4])
  local fmt = function(v)
    return v and string.format("%d", v) or ""
  end
  return {3, pattern, tz, fmt(startDate), fmt(endDate), fmt(num(opts["prevMillis"]))}
else
  nextMillis = math.floor(tonumber(ARGV[5]))
  rep["offset"] = nil
  opts["prevMillis"] = nextMillis
end

local nextText = string.format("%d", nextMillis)
local nextId = "repeat:" .. sid .. ":" .. nextText
local nextKey = qp .. nextId
if redis.call("EXISTS", nextKey) == 1 then
  emit("duplicated", "jobId", nextId)
  return {2, nextId}
end

redis.call("ZADD", repeatKey, nextMillis, sid)
redis.call("HINCRBY", schedKey, "ic", 1)
redis.call("INCR", idKey)

local delay = nextMillis - now
if delay < 0 then
  delay = 0
end
rep["count"] = count
rep["immediately"] = nil
opts["jobId"] = nextId
opts["repeatJobKey"] = sid
opts["timestamp"] = now
opts["delay"] = delay
local priority = num(opts["priority"]) or 0
local name = s[1] or ""
local fields = {"name", name, "data", s[2] or "{}", "opts", cjson.encode(opts), "timestamp",
  ARGV[4], "delay", string.format("%d", delay), "priority", string.format("%d", priority),
  "rjk", sid}
if type(opts["de"]) == "table" and type(opts["de"]["id"]) == "string" then
  fields[#fields + 1] = "deid"
  fields[#fields + 1] = opts["de"]["id"]
end
redis.call("HSET", nextKey, unpack(fields))
emit("added", "jobId", nextId, "name", name)
if delay > 0 then
  redis.call("ZADD", delayedKey, delayedScore(nextMillis), nextId)
  emit("delayed", "jobId", nextId, "delay", nextText)
  markNextDelayed()
else
  -- a lifo template goes to the front of the wait list (priorities keep their order)
  makeReady(nextId, priority == 0 and opts["lifo"] == true)
  emit("waiting", "jobId", nextId)
end
return {1, nextId}
