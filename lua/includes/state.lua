--[[
  jobState(id): the state holding job `id`, in the order BullMQ's getState checks them.
  takeOut(id, state): removes `id` from that state's structure.
]]
local function jobState(id)
  if redis.call("ZSCORE", completedKey, id) then return "completed" end
  if redis.call("ZSCORE", failedKey, id) then return "failed" end
  if redis.call("ZSCORE", delayedKey, id) then return "delayed" end
  if redis.call("ZSCORE", prioritizedKey, id) then return "prioritized" end
  if redis.call("LPOS", activeKey, id) then return "active" end
  if redis.call("LPOS", waitKey, id) then return "waiting" end
  if redis.call("LPOS", pausedKey, id) then return "paused" end
  if redis.call("ZSCORE", waitingChildrenKey, id) then return "waiting-children" end
  return "unknown"
end
local stateKeys = {
  ["completed"] = completedKey, ["failed"] = failedKey, ["delayed"] = delayedKey,
  ["prioritized"] = prioritizedKey, ["waiting-children"] = waitingChildrenKey,
  ["active"] = activeKey, ["waiting"] = waitKey, ["paused"] = pausedKey
}
local stateIsList = { ["active"] = true, ["waiting"] = true, ["paused"] = true }
local function takeOut(id, state)
  local key = stateKeys[state]
  if key then
    if stateIsList[state] then
      redis.call("LREM", key, 1, id)
    else
      redis.call("ZREM", key, id)
    end
  end
end
