--[[
  addIteration(sid, nextMillis, now, name, data, opts): stores and enqueues the iteration
  "repeat:<sid>:<nextMillis>" of job scheduler `sid` as BullMQ 6 does (bullmq-protocol.md
  §4.21): the hash fields an add writes plus rjk, options with jobId, repeatJobKey, timestamp
  and delay; delayed until nextMillis, else ready. Counts the add in the id key. Events: added,
  then delayed (delay = the due time) or waiting. Returns the id and the delay.
]]
--- @include "events"
--- @include "markers"
--- @include "scores"
--- @include "ready"
local function addIteration(sid, nextMillis, now, name, data, opts)
  local nextText = string.format("%d", nextMillis)
  local id = "repeat:" .. sid .. ":" .. nextText
  local delay = nextMillis - now
  if delay < 0 then
    delay = 0
  end
  opts["jobId"] = id
  opts["repeatJobKey"] = sid
  opts["timestamp"] = now
  opts["delay"] = delay
  local priority = tonumber(opts["priority"]) or 0
  local fields = {"name", name, "data", data, "opts", cjson.encode(opts), "timestamp",
    string.format("%d", now), "delay", string.format("%d", delay), "priority",
    string.format("%d", priority), "rjk", sid}
  if type(opts["de"]) == "table" and type(opts["de"]["id"]) == "string" then
    fields[#fields + 1] = "deid"
    fields[#fields + 1] = opts["de"]["id"]
  end
  redis.call("INCR", idKey)
  redis.call("HSET", qp .. id, unpack(fields))
  emit("added", "jobId", id, "name", name)
  if delay > 0 then
    redis.call("ZADD", delayedKey, delayedScore(nextMillis), id)
    emit("delayed", "jobId", id, "delay", nextText)
    markNextDelayed()
  else
    -- a lifo template goes to the front of the wait list (priorities keep their order)
    makeReady(id, priority == 0 and opts["lifo"] == true)
    emit("waiting", "jobId", id)
  end
  return id, delay
end
