--[[
  BullMQ's per-minute counts of finished jobs, kept when a worker sets metrics.maxDataPoints:
  the hash `metrics:<kind>` (count: jobs finished since counting began; prevTS: when the
  newest data point was closed; prevCount: count at that time) and the list
  `metrics:<kind>:data` (jobs finished per minute, newest first, at most maxDataPoints).

  countFinished(kind, n, now, maxPoints): `n` jobs of `kind` ("completed" | "failed") finished
  at `now` (ms). The first count starts the clock (prevTS = now, prevCount 0). Once the
  minute of `now` (floor(now / 60000)) is past that of prevTS, the jobs counted before these
  `n`, minus prevCount, become the point of prevTS's minute, and a zero is added for each
  minute after it without a point (at most maxPoints points in all); the list is cut to
  maxPoints and prevTS / prevCount move on. n jobs at once count as n single finishes at the
  same time would: only the first can close a minute.
]]
local function countFinished(kind, n, now, maxPoints)
  local key = qp .. "metrics:" .. kind
  local before = redis.call("HINCRBY", key, "count", n) - n
  local prevTS = redis.call("HGET", key, "prevTS")
  if not prevTS then
    redis.call("HSET", key, "prevTS", now, "prevCount", 0)
    return
  end
  local minutes = math.floor(tonumber(now) / 60000) - math.floor(tonumber(prevTS) / 60000)
  if minutes <= 0 then
    return
  end
  minutes = math.min(minutes, maxPoints)
  local dataKey = key .. ":data"
  -- LPUSH puts its last argument at the head: the closed minute first, then the empty ones
  local args = {before - tonumber(redis.call("HGET", key, "prevCount") or 0)}
  for i = 2, minutes do
    args[#args + 1] = 0
    if #args == 4096 then
      redis.call("LPUSH", dataKey, unpack(args))
      args = {}
    end
  end
  if #args > 0 then
    redis.call("LPUSH", dataKey, unpack(args))
  end
  redis.call("LTRIM", dataKey, 0, maxPoints - 1)
  redis.call("HSET", key, "prevCount", before, "prevTS", now)
end
