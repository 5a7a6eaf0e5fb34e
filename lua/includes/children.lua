--[[
  Flows: removing a parent takes its pending children with it, recursively (BullMQ's remove
  with its default removeChildren), wherever they are (their keys are full job keys,
  "<prefix>:<queue>:<id>", in the parent's `:dependencies`).

  treeLocked(jk): whether job key `jk` or one of its pending descendants is locked (BullMQ then
  removes nothing).
  removeChildren(jk): removes the pending descendants of `jk` (each with event removed, prev
  the state it was in, in its own queue), leaving `jk` itself.
]]
local function treeLocked(jk, depth)
  if redis.call("EXISTS", jk .. ":lock") == 1 then
    return true
  end
  if depth > 100 then
    return false
  end
  for _, ck in ipairs(redis.call("SMEMBERS", jk .. ":dependencies")) do
    if treeLocked(ck, depth + 1) then
      return true
    end
  end
  return false
end

local childLists = {{"active", "active"}, {"wait", "waiting"}, {"paused", "waiting"}}
local childSets = {{"completed", "completed"}, {"failed", "failed"}, {"delayed", "delayed"},
  {"prioritized", "prioritized"}, {"waiting-children", "waiting-children"}}

-- takes job `id` of queue key `qk` out of the structure holding it; returns that state
local function takeOutOf(qk, id)
  for _, s in ipairs(childSets) do
    if redis.call("ZREM", qk .. ":" .. s[1], id) == 1 then
      return s[2]
    end
  end
  for _, s in ipairs(childLists) do
    if redis.call("LREM", qk .. ":" .. s[1], 1, id) == 1 then
      return s[2]
    end
  end
  return "unknown"
end

local function removeChildren(jk, depth)
  if depth > 100 then
    return
  end
  for _, ck in ipairs(redis.call("SMEMBERS", jk .. ":dependencies")) do
    local cqk, cid = string.match(ck, "^(.+):([^:]+)$")
    if cqk and redis.call("EXISTS", ck) == 1 then
      removeChildren(ck, depth + 1)
      local state = takeOutOf(cqk, cid)
      redis.call("SREM", cqk .. ":stalled", cid)
      local deid = redis.call("HGET", ck, "deid")
      if deid and redis.call("GET", cqk .. ":de:" .. deid) == cid then
        redis.call("DEL", cqk .. ":de:" .. deid, cqk .. ":dn:" .. deid)
      end
      redis.call("DEL", ck, ck .. ":logs", ck .. ":dependencies", ck .. ":processed",
        ck .. ":failed", ck .. ":unsuccessful")
      local maxLen = redis.call("HGET", cqk .. ":meta", "opts.maxLenEvents") or "10000"
      redis.call("XADD", cqk .. ":events", "MAXLEN", "~", maxLen, "*", "event", "removed",
        "jobId", cid, "prev", state)
    end
  end
  redis.call("DEL", jk .. ":dependencies")
end
