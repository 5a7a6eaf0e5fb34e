--[[
  Events stream helpers. maxEvents() reads (and creates when missing) opts.maxLenEvents of
  the meta hash, as a decimal string; emit() appends one entry, trimmed approximately to that length.
  A step that emits many events sets trimOnce and trims the stream once at its end
  (trimEvents): one XTRIM instead of one trim per entry.
]]
local maxEventsCache = nil
local function maxEvents()
  if maxEventsCache == nil then
    local v = redis.call("HGET", metaKey, "opts.maxLenEvents")
    if not v then
      v = 10000
      redis.call("HSET", metaKey, "opts.maxLenEvents", v)
    end
    -- kept as text: Lua would format a number argument anew for every call
    maxEventsCache = tostring(math.floor(tonumber(v) or 10000))
  end
  return maxEventsCache
end
local trimOnce = false
local function emit(...)
  if trimOnce then
    redis.call("XADD", eventsKey, "*", "event", ...)
  else
    redis.call("XADD", eventsKey, "MAXLEN", "~", maxEvents(), "*", "event", ...)
  end
end
local function trimEvents()
  redis.call("XTRIM", eventsKey, "MAXLEN", "~", maxEvents())
end
