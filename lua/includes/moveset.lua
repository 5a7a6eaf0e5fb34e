--[[
  Takes job `id` out of the zset `setKey` and applies `moveOne` to it; with id "" does that
  to every member. Returns how many moved, -1 if the job does not exist, -3 if it is not in
  the set. Needs includes/keys (qp).
]]
local function moveFromSet(setKey, id, moveOne)
  if id ~= "" then
    if not jobExists(qp .. id) then
      return -1
    end
    if redis.call("ZREM", setKey, id) == 0 then
      return -3
    end
    moveOne(id)
    return 1
  end
  local ids = redis.call("ZRANGE", setKey, 0, -1)
  for _, each in ipairs(ids) do
    redis.call("ZREM", setKey, each)
    moveOne(each)
  end
  return #ids
end
