--[[
  The queue limits, where BullMQ 6 keeps them: meta fields `concurrency` (setGlobalConcurrency),
  `max` and `duration` (setGlobalRateLimit), and the rate window, the `limiter` key (a count
  expiring with the window; rateLimit() sets it to 2^53-1 for the given ms).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] "set" | "get" | "block"
    set:   ARGV[3] bit mask (1 concurrency, 2 rate limit), ARGV[4] concurrency, ARGV[5] max,
           ARGV[6] duration ms; a value "0" removes the field(s)
    block: ARGV[3] ms
  Output:
    set, block: 0
    get: {concurrency, max, duration, limiter count, limiter ms left} (nil when absent; ms
    left as PTTL answers it)
  Events: none
]]
--- @include "includes/keys"
--- @include "includes/markers"

local mode = ARGV[2]
if mode == "get" then
  local m = redis.call("HMGET", metaKey, "concurrency", "max", "duration")
  return {m[1], m[2], m[3], redis.call("GET", limiterKey), redis.call("PTTL", limiterKey)}
end
if mode == "block" then
  redis.call("SET", limiterKey, "9007199254740991", "PX", ARGV[3])
  return 0
end
local what = tonumber(ARGV[3])
if what % 2 == 1 then
  if ARGV[4] == "0" then
    redis.call("HDEL", metaKey, "concurrency")
  else
    redis.call("HSET", metaKey, "concurrency", ARGV[4])
  end
end
if what >= 2 then
  if ARGV[5] == "0" then
    redis.call("HDEL", metaKey, "max", "duration")
  else
    redis.call("HSET", metaKey, "max", ARGV[5], "duration", ARGV[6])
  end
end
-- a limit raised or removed may let sleeping workers fetch
if redis.call("LLEN", waitKey) + redis.call("ZCARD", prioritizedKey) > 0 then
  wakeWorkers()
end
return 0
