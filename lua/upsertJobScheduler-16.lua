--[[
  Creates or updates a job scheduler and its first iteration, as BullMQ 6's
  upsertJobScheduler (bullmq-protocol.md §4.21): the scheduler hash "repeat:<sid>" (DEL then
  written anew; the iteration count is kept), its next time in the `repeat` zset, and the
  iteration job. A pending iteration that waits (waiting, prioritized, delayed) is deleted and
  replaced (no event); an every scheduler whose interval did not change keeps its time. An
  iteration that is active stays: the new one is added beside it.

  Input:
    KEYS[1..16] the queue keys (includes/keys.lua)
    ARGV[1] key prefix, ARGV[2] scheduler id, ARGV[3] now (ms), ARGV[4] job name,
    ARGV[5] data JSON, ARGV[6] template options JSON ("{}": none), ARGV[7] every ("": a
    pattern), ARGV[8] offset (0: none), ARGV[9] pattern, ARGV[10] tz, ARGV[11] startDate,
    ARGV[12] endDate, ARGV[13] limit ("" for what is unset), ARGV[14] the pattern's first
    time (computed by the caller)
  Output:
    {id, delay}  the iteration created
    -10          a pattern scheduler's iteration id is taken by another job
    -11          an every scheduler found its next 32 slots taken
  Events: added, then delayed or waiting
]]
--- @include "includes/keys"
--- @include "includes/iteration"
--- @include "includes/remove"

local sid, now = ARGV[2], tonumber(ARGV[3])
local repeatKey = qp .. "repeat"
local schedKey = repeatKey .. ":" .. sid
local every, offset = tonumber(ARGV[7]), tonumber(ARGV[8]) or 0
local startDate, endDate, limit = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])

local prev = redis.call("ZSCORE", repeatKey, sid)
local nextMillis = tonumber(ARGV[14])
local storedOffset = offset
local keepTime = false
if every then
  local base = prev and tonumber(prev)
  if base and tonumber(redis.call("HGET", schedKey, "every")) ~= every then
    base = nil -- a new interval starts anew
  end
  keepTime = base ~= nil
  if base then
    nextMillis = base + every
    if nextMillis < now then
      -- iterations were missed: the first slot after now that keeps the offset
      nextMillis = math.floor(now / every) * every + offset
      if nextMillis <= now then
        nextMillis = nextMillis + every
      end
    end
  elseif startDate then
    nextMillis = math.max(startDate, now)
  elseif offset > 0 then
    nextMillis = math.floor(now / every) * every + offset
    if nextMillis <= now then
      nextMillis = nextMillis + every
    end
  else
    nextMillis = now
  end
  nextMillis = math.floor(nextMillis)
  if offset == 0 then
    -- BullMQ stores the phase of the first time as the offset
    storedOffset = nextMillis - math.floor(nextMillis / every) * every
  end
end

-- the pending iteration, if it waits for a worker or its time: it is replaced
local current
if prev then
  current = "repeat:" .. sid .. ":" .. prev
  if not (redis.call("ZSCORE", delayedKey, current) or
      redis.call("ZSCORE", prioritizedKey, current) or redis.call("LPOS", waitKey, current)) then
    current = nil
  end
end
if current then
  if keepTime then
    nextMillis = tonumber(prev)
  end
  storedOffset = nil -- BullMQ keeps the stored offset when it replaces an iteration
  if offset > 0 then
    storedOffset = offset
  end
end

local id = "repeat:" .. sid .. ":" .. string.format("%d", nextMillis)
if id ~= current and redis.call("EXISTS", qp .. id) == 1 then
  if not every then
    return -10
  end
  local scans = 0
  repeat
    nextMillis = nextMillis + every
    id = "repeat:" .. sid .. ":" .. string.format("%d", nextMillis)
    scans = scans + 1
  until redis.call("EXISTS", qp .. id) == 0 or scans >= 32
  if redis.call("EXISTS", qp .. id) == 1 then
    return -11
  end
end

if current then
  redis.call("ZREM", delayedKey, current)
  redis.call("ZREM", prioritizedKey, current)
  redis.call("LREM", waitKey, 1, current)
  removeJobKeys(current)
end

-- the scheduler hash, as BullMQ writes it
local fields = {"name", ARGV[4]}
local function put(k, v)
  if v ~= nil and v ~= "" then
    fields[#fields + 1] = k
    fields[#fields + 1] = v
  end
end
put("tz", ARGV[10])
put("limit", ARGV[13])
put("pattern", ARGV[9])
put("startDate", ARGV[11])
put("endDate", ARGV[12])
put("every", ARGV[7])
if storedOffset then
  put("offset", string.format("%d", storedOffset))
else
  put("offset", redis.call("HGET", schedKey, "offset"))
end
if ARGV[6] ~= "{}" then
  put("opts", ARGV[6])
end
if ARGV[5] ~= "{}" then
  put("data", ARGV[5])
end
put("ic", redis.call("HGET", schedKey, "ic") or "1")
redis.call("DEL", schedKey)
redis.call("HSET", schedKey, unpack(fields))
redis.call("ZADD", repeatKey, nextMillis, sid)

-- the iteration's options: the template's and the repeat settings
local ok, opts = pcall(cjson.decode, ARGV[6])
if not ok or type(opts) ~= "table" then
  opts = {}
end
local rep = {count = 1, limit = limit, tz = ARGV[10] ~= "" and ARGV[10] or nil,
  startDate = startDate, endDate = endDate}
if every then
  rep["every"] = every
  if offset > 0 then
    rep["offset"] = offset
  end
else
  rep["pattern"] = ARGV[9]
  opts["prevMillis"] = nextMillis
end
opts["repeat"] = rep
local jobId, delay = addIteration(sid, nextMillis, now, ARGV[4], ARGV[5], opts)
return {jobId, delay}
