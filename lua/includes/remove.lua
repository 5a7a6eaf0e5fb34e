--[[
  Job deletion. removeJobKeys(id) deletes the job hash and its companion keys (not the lock,
  which expires on its own) and the deduplication key the job owns.
]]
local function releaseDedup(id, deid)
  if deid then
    local dk = qp .. "de:" .. deid
    if redis.call("GET", dk) == id then
      redis.call("DEL", dk, qp .. "dn:" .. deid)
    end
  end
end
local function removeJobKeys(id)
  local jk = qp .. id
  releaseDedup(id, redis.call("HGET", jk, "deid"))
  redis.call("DEL", jk, jk .. ":logs", jk .. ":dependencies", jk .. ":processed",
    jk .. ":failed", jk .. ":unsuccessful")
end
