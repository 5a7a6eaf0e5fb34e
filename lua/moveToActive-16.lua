--[[
  Fetches the next job (BullMQ's moveToActive): promotes due delayed jobs, honours the
  global rate limit, pause and global concurrency, then takes waiting before prioritized,
  locks the job and marks it started.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] lock token, ARGV[3] lock ms, ARGV[4] now (ms),
    ARGV[5] worker name ("" for none)
  Output:
    {jobHashFlat | 0, jobId | 0, rateLimitTtl, nextDelayedDue}
  Events: waiting (prev delayed) for promotions, active (prev waiting)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/ready"

local token, lockMs, now, worker = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]

promoteDue(now)

local meta = redis.call("HMGET", metaKey, "paused", "concurrency", "max", "duration")
local maxJobs = tonumber(meta[3])
if maxJobs then
  local used = tonumber(redis.call("GET", limiterKey) or "0")
  if used >= maxJobs then
    local ttl = redis.call("PTTL", limiterKey)
    if ttl > 0 then
      return {0, 0, ttl, 0}
    end
    redis.call("DEL", limiterKey)
  end
end
if isBlocked() then
  return {0, 0, 0, 0}
end

local id = redis.call("RPOPLPUSH", waitKey, activeKey)
while id and string.sub(id, 1, 2) == "0:" do
  -- a marker of very old BullMQ versions: drop it
  redis.call("LREM", activeKey, 1, id)
  id = redis.call("RPOPLPUSH", waitKey, activeKey)
end
if not id then
  local popped = redis.call("ZPOPMIN", prioritizedKey)
  if popped[1] then
    id = popped[1]
    redis.call("LPUSH", activeKey, id)
  else
    redis.call("DEL", pcKey)
  end
end
if not id then
  return {0, 0, 0, nextDelayedDue()}
end

local jk = qp .. id
if maxJobs and redis.call("HEXISTS", jk, "defa") == 0 then
  if redis.call("INCR", limiterKey) == 1 then
    redis.call("PEXPIRE", limiterKey, math.floor(math.abs(tonumber(meta[4] or "1000"))))
  end
end
redis.call("SET", jk .. ":lock", token, "PX", lockMs)
emit("active", "jobId", id, "prev", "waiting")
if worker ~= "" then
  redis.call("HSET", jk, "processedOn", now, "pb", worker)
else
  redis.call("HSET", jk, "processedOn", now)
end
redis.call("HINCRBY", jk, "ats", 1)
-- the next idle worker is woken only if there is more for it
if redis.call("LLEN", waitKey) > 0 or redis.call("ZCARD", prioritizedKey) > 0 then
  redis.call("ZADD", markerKey, 0, "0")
end
return {redis.call("HGETALL", jk), id, 0, nextDelayedDue()}
