--[[
  isCurrentIteration(id): true when `id` is the pending iteration of a job scheduler
  ("repeat:<schedulerId>:<millis>" whose scheduler's next time is <millis>). Such jobs are
  kept by drain and clean and never removed, as BullMQ does.
]]
local function isCurrentIteration(id)
  local sid, millis = string.match(id, "^repeat:(.+):(%d+)$")
  if sid then
    local score = redis.call("ZSCORE", qp .. "repeat", sid)
    if score and tonumber(score) == tonumber(millis) then
      return true
    end
  end
  return false
end

--[[
  ofLiveScheduler(jk): true when the job at key `jk` is an iteration (field rjk) of a job
  scheduler that still exists (its hash, or a member of the repeat set as older writers left
  it), pending or running. The stall limit never fails such a job, as BullMQ 6 keeps it.
]]
local function ofLiveScheduler(jk)
  local sid = redis.call("HGET", jk, "rjk")
  if not sid then
    return false
  end
  return redis.call("EXISTS", qp .. "repeat:" .. sid) == 1 or
    redis.call("ZSCORE", qp .. "repeat", sid) ~= false
end
