--[[
  The queue keys every script receives, always in this order (numkeys 16), and the key
  prefix of the queue (ARGV[1], "<prefix>:<queue>:") from which job keys are built.
]]
local waitKey = KEYS[1]
local pausedKey = KEYS[2]
local activeKey = KEYS[3]
local prioritizedKey = KEYS[4]
local pcKey = KEYS[5]
local delayedKey = KEYS[6]
local completedKey = KEYS[7]
local failedKey = KEYS[8]
local waitingChildrenKey = KEYS[9]
local stalledKey = KEYS[10]
local stalledCheckKey = KEYS[11]
local markerKey = KEYS[12]
local metaKey = KEYS[13]
local idKey = KEYS[14]
local eventsKey = KEYS[15]
local limiterKey = KEYS[16]
local qp = ARGV[1]

--[[
  Whether the job key `jk` (qp .. id) is one of the queue's own keys rather than a job's: an id
  such as "meta", "wait", "repeat", "de:x" or "1:lock" (ids with ':' are jobs only in BullMQ's
  three-part shape). The C core answers "not found" for such ids before any script runs
  (jobq__reserved_id); this keeps a script from reading or changing those keys if one comes
  another way.
]]
local function isQueueKey(jk)
  for i = 1, #KEYS do
    if KEYS[i] == jk then
      return true
    end
  end
  local id = string.sub(jk, #qp + 1)
  if id == "repeat" or id == "metrics" or id == "de" or id == "dn" then
    return true
  end
  local _, colons = string.gsub(id, ":", "")
  if colons == 0 then
    return false
  end
  local head = string.match(id, "^([^:]*):")
  return colons ~= 2 or head == "de" or head == "dn" or head == "metrics"
end

-- Whether job key `jk` holds a job (never one of the queue's own keys).
local function jobExists(jk)
  return not isQueueKey(jk) and redis.call("EXISTS", jk) == 1
end
