--[[
  Reads BullMQ's per-minute counts of finished jobs of one kind (includes/metrics).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] "completed" | "failed", ARGV[3] first point, ARGV[4] last
    point (LRANGE's indexes: 0 the newest minute, -1 the oldest)
  Output:
    {{count, prevTS, prevCount} (each nil when not set), the points asked for, how many
    points there are}
]]
--- @include "includes/keys"

local key = qp .. "metrics:" .. ARGV[2]
return {redis.call("HMGET", key, "count", "prevTS", "prevCount"),
  redis.call("LRANGE", key .. ":data", tonumber(ARGV[3]), tonumber(ARGV[4])),
  redis.call("LLEN", key .. ":data")}
