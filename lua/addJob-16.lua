--[[
  Adds one plain job alone: generated id, no deduplication, delay or priority, FIFO. This is
  what addJobs does for such a job, without its general machinery (which costs a lone add
  about a fifth more server time): the common single add in the fewest steps.

  Input:
    KEYS[1..16] the queue keys (includes/keys.lua)
    ARGV[1] key prefix of the queue, ARGV[2] name, ARGV[3] data (JSON), ARGV[4] opts (JSON),
    ARGV[5] timestamp
  Output:
    {id} (as addJobs for one plain job: {firstId})
  Events: added, waiting
]]
--- @include "includes/keys"

local meta = redis.call("HMGET", metaKey, "opts.maxLenEvents", "paused", "concurrency")
local maxLen = meta[1]
if not maxLen then
  maxLen = "10000"
  redis.call("HSET", metaKey, "opts.maxLenEvents", maxLen)
end
local first = redis.call("INCR", idKey)
local id = tostring(first)
local name = ARGV[2]
redis.call("HSET", qp .. id, "name", name, "data", ARGV[3], "opts", ARGV[4], "timestamp",
  ARGV[5], "delay", "0", "priority", "0")
redis.call("XADD", eventsKey, "MAXLEN", "~", maxLen, "*", "event", "added", "jobId", id,
  "name", name)
redis.call("LPUSH", waitKey, id)
redis.call("XADD", eventsKey, "MAXLEN", "~", maxLen, "*", "event", "waiting", "jobId", id)
-- wake a worker unless the queue is paused or at its global concurrency
if not meta[2] and not (meta[3] and redis.call("LLEN", activeKey) >= tonumber(meta[3])) then
  redis.call("ZADD", markerKey, "0", "0")
end
return {first}
