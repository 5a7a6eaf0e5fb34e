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
