--[[
  Fetches the next job (BullMQ's moveToActive): promotes due delayed jobs, honours pause,
  the global concurrency and the global rate limit, then takes waiting before prioritized,
  locks the job and marks it started (includes/fetch, shared with completeFetch).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] lock token, ARGV[3] lock ms, ARGV[4] now (ms),
    ARGV[5] the worker's name for the job's pb ("" or absent: none),
    ARGV[6] the worker's limiter max, ARGV[7] its duration ms ("0" or absent: none)
  Output:
    {jobHashFlat | 0, jobId | 0, rateLimitTtl, nextDelayedDue}
  Events: waiting (prev delayed) for promotions, active (prev waiting)
]]
--- @include "includes/keys"
--- @include "includes/fetch"

local now = tonumber(ARGV[4])
workerName = ARGV[5]
local due = promoteIfDue(now)
local meta = redis.call("HMGET", metaKey, "paused", "concurrency", "max", "duration")
local ids, wait = fetchJobs(1, 2, ARGV[3], ARGV[4], meta, ARGV[6], ARGV[7])
if not ids[1] then
  return {0, 0, wait, due}
end
return {redis.call("HGETALL", qp .. ids[1]), ids[1], 0, due}
