--[[
  The stalled-job check (BullMQ's moveStalledJobsToWait), two-phase: jobs marked as suspects
  by the previous check whose lock has expired go back to the front of the wait list
  (stc + 1; past the limit they get `defa`, so the next fetch fails them, unless they are an
  iteration of a job scheduler that exists); then every active job becomes a suspect for the
  next check. `stalled-check` (PX interval) lets only one caller per interval do the work,
  whatever client it is.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] max stalled count, ARGV[3] now (ms),
    ARGV[4] stalled interval ms (<= 0: no throttle)
  Output:
    the ids recovered
  Events: waiting (prev active), stalled
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/markers"
--- @include "includes/scheduler"

local maxStalled, now, interval = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if interval > 0 then
  if redis.call("EXISTS", stalledCheckKey) == 1 then
    return {}
  end
  redis.call("SET", stalledCheckKey, now, "PX", interval)
end
redis.call("XTRIM", eventsKey, "MAXLEN", "~", maxEvents())

local recovered = {}
local suspects = redis.call("SMEMBERS", stalledKey)
redis.call("DEL", stalledKey)
for _, id in ipairs(suspects) do
  local jk = qp .. id
  if string.sub(id, 1, 2) == "0:" then
    redis.call("LREM", activeKey, 1, id)
  elseif redis.call("EXISTS", jk .. ":lock") == 0 and redis.call("LREM", activeKey, 1, id) > 0 then
    if redis.call("EXISTS", jk) == 1 then
      local stc = redis.call("HINCRBY", jk, "stc", 1)
      if stc > maxStalled and not ofLiveScheduler(jk) then
        redis.call("HSET", jk, "defa", "job stalled more than allowable limit")
      end
      redis.call("RPUSH", waitKey, id)
      wakeWorkers()
      emit("waiting", "jobId", id, "prev", "active")
      emit("stalled", "jobId", id)
      recovered[#recovered + 1] = id
    end
  end
end

local active = redis.call("LRANGE", activeKey, 0, -1)
for i = 1, #active, 7000 do
  redis.call("SADD", stalledKey, unpack(active, i, math.min(i + 6999, #active)))
end
return recovered
