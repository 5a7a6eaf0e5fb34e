--[[
  unlock(id, token): the compare-and-swap every transition out of active starts with.
  Every token is checked, "0" included (BullMQ's administrative "0" is not used by jobq).
  Returns 0 when `token` held the lock (the lock is deleted and the id leaves the stalled
  suspects), -2 when the lock is gone (expired), -6 when another token holds it.
]]
local function unlock(id, token)
  local lockKey = qp .. id .. ":lock"
  local cur = redis.call("GET", lockKey)
  if not cur then
    return -2
  end
  if cur ~= token then
    return -6
  end
  redis.call("DEL", lockKey)
  redis.call("SREM", stalledKey, id)
  return 0
end
