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
--- @include "includes/iteration"

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

local nextId = "repeat:" .. sid .. ":" .. string.format("%d", nextMillis)
if redis.call("EXISTS", qp .. nextId) == 1 then
  emit("duplicated", "jobId", nextId)
  return {2, nextId}
end

redis.call("ZADD", repeatKey, nextMillis, sid)
redis.call("HINCRBY", schedKey, "ic", 1)
rep["count"] = count
rep["immediately"] = nil
addIteration(sid, nextMillis, now, s[1] or "", s[2] or "{}", opts)
return {1, nextId}
