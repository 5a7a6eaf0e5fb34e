--[[
  Adds a flow (a tree of jobs across queues of one prefix) in one step, writing what BullMQ 6's
  FlowProducer writes: a parent in its queue's waiting-children (event waiting-children), each
  child with the hash fields `parentKey` and `parent` (JSON id, queueKey and its failure
  policy) and `parent` plus the policy in its opts, each child's key in its parent's
  `:dependencies`. Every check runs before the first write: a refused flow changes nothing.

  Input:
    KEYS[1..16] the keys of the root's queue (includes/keys.lua)
    ARGV[1] key prefix of the root's queue, ARGV[2] number of jobs n, ARGV[3] now (ms)
    ARGV[4] the queue key ("<prefix>:<queue>") of the existing parent the root becomes a
      child of ("" none), ARGV[5] its id
    then per job 12 fields: queue key, custom id ("" generated), name, data (JSON), opts
      (JSON object without parent), timestamp, delay, priority, lifo ("1"/"0"), parent index
      (1-based into this call's jobs; 0: the root, under ARGV[4] or none), policy ("fpof",
      "idof", "rdof", "cpof" or ""), number of children
  Output:
    {"ok", id1, ..., idn}, or {code, i}: -5 the existing parent is missing, -7 job i's custom
    id belongs to another parent that exists, -10 job i's custom id exists and it has
    children in the flow
  Events: per queue added, waiting-children | waiting | delayed, duplicated; a parent
    released at the end: waiting (prev waiting-children) or delayed
]]
--- @include "includes/keys"
--- @include "includes/parent"

local n = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local extQk, extId = ARGV[4], ARGV[5]
local F = 12
local function field(i, k)
  return ARGV[5 + (i - 1) * F + k]
end

-- the parent of job i: its key, queue key and id (nil: none)
local ids, keys = {}, {}
local function parentOfJob(i)
  local pi = tonumber(field(i, 10))
  if pi > 0 then
    return keys[pi], field(pi, 1), ids[pi]
  end
  if extQk ~= "" then
    return extQk .. ":" .. extId, extQk, extId
  end
  return nil
end

-- checks: nothing is written before all pass. A read of each queue first: on Redis Cluster
-- a queue in another slot (no shared hash tag) fails the script here, before any write.
local seen = {}
for i = 1, n do
  local qk = field(i, 1)
  if not seen[qk] then
    seen[qk] = true
    redis.call("EXISTS", qk .. ":meta")
  end
end
if extQk ~= "" and redis.call("EXISTS", extQk .. ":" .. extId) == 0 then
  return {-5, 0}
end
for i = 1, n do
  local cid = field(i, 2)
  if cid ~= "" then
    local jk = field(i, 1) .. ":" .. cid
    if redis.call("EXISTS", jk) == 1 then
      if tonumber(field(i, 12)) > 0 then
        return {-10, i}
      end
      -- its parent: only the root can have one that exists already (the others are new)
      local owner = redis.call("HGET", jk, "parentKey")
      local mine = nil
      if tonumber(field(i, 10)) == 0 and extQk ~= "" then
        mine = extQk .. ":" .. extId
      end
      if owner and owner ~= mine and redis.call("EXISTS", owner) == 1 then
        return {-7, i}
      end
    end
  end
end

-- per queue: its settings, read once
local queues = {}
local function queueOf(qk)
  local s = queues[qk]
  if not s then
    local m = redis.call("HMGET", qk .. ":meta", "opts.maxLenEvents", "paused", "concurrency")
    local maxLen = m[1]
    if not maxLen then
      maxLen = "10000"
      redis.call("HSET", qk .. ":meta", "opts.maxLenEvents", maxLen)
    end
    local blocked = m[2] ~= false
    if not blocked and m[3] then
      blocked = redis.call("LLEN", qk .. ":active") >= tonumber(m[3])
    end
    s = {maxLen = maxLen, blocked = blocked, wake = false, delayed = false}
    queues[qk] = s
  end
  return s
end
local function emit(qk, ...)
  redis.call("XADD", qk .. ":events", "MAXLEN", "~", queueOf(qk).maxLen, "*", "event", ...)
end

local policyOf = {fpof = true, idof = true, rdof = true, cpof = true}
local parents = {}
for i = 1, n do
  local qk = field(i, 1)
  local q = queueOf(qk)
  local ctr = redis.call("INCR", qk .. ":id")
  local id = field(i, 2)
  if id == "" then
    id = tostring(ctr)
  end
  local jk = qk .. ":" .. id
  ids[i], keys[i] = id, jk
  local pk, pqk, pid = parentOfJob(i)
  local policy = field(i, 11)
  local parentJson
  if pk then
    parentJson = '{"id":' .. cjson.encode(pid) .. ',"queueKey":' .. cjson.encode(pqk)
    if policyOf[policy] then
      parentJson = parentJson .. ',"' .. policy .. '":true'
    end
    parentJson = parentJson .. "}"
  end
  if field(i, 2) ~= "" and redis.call("EXISTS", jk) == 1 then
    -- an existing job without children: attached to its new parent, as BullMQ's add does
    if pk then
      redis.call("HSET", jk, "parentKey", pk, "parent", parentJson)
      if redis.call("ZSCORE", qk .. ":completed", id) then
        redis.call("HSET", pk .. ":processed", jk, redis.call("HGET", jk, "returnvalue") or "null")
        parents[pk] = {key = pk, queue = pqk, id = pid}
      else
        redis.call("SADD", pk .. ":dependencies", jk)
      end
    end
    emit(qk, "duplicated", "jobId", id)
  else
    local name, opts = field(i, 3), field(i, 5)
    if pk then
      -- Node stores the parent and the policy in opts too
      local extra = ',"parent":{"id":' .. cjson.encode(pid) .. ',"queue":' .. cjson.encode(pqk) .. "}"
      if policyOf[policy] then
        extra = extra .. ',"' .. policy .. '":true'
      end
      opts = string.sub(opts, 1, #opts - 1) .. extra .. "}"
      redis.call("HSET", jk, "name", name, "data", field(i, 4), "opts", opts, "timestamp",
        field(i, 6), "delay", field(i, 7), "priority", field(i, 8), "parentKey", pk, "parent",
        parentJson)
    else
      redis.call("HSET", jk, "name", name, "data", field(i, 4), "opts", opts, "timestamp",
        field(i, 6), "delay", field(i, 7), "priority", field(i, 8))
    end
    emit(qk, "added", "jobId", id, "name", name)
    local delay, priority = tonumber(field(i, 7)), tonumber(field(i, 8))
    if tonumber(field(i, 12)) > 0 then
      redis.call("ZADD", qk .. ":waiting-children", field(i, 6), id)
      emit(qk, "waiting-children", "jobId", id)
      parents[jk] = {key = jk, queue = qk, id = id}
    elseif delay > 0 then
      local due = tonumber(field(i, 6)) + delay
      local dk = qk .. ":delayed"
      local low = due * 4096
      local top = redis.call("ZREVRANGEBYSCORE", dk, low + 4095, low, "WITHSCORES", "LIMIT", 0, 1)
      local score = low
      if top[2] then
        score = math.min(tonumber(top[2]) + 1, low + 4095)
      end
      redis.call("ZADD", dk, score, id)
      emit(qk, "delayed", "jobId", id, "delay", due)
      q.delayed = true
    else
      if priority > 0 then
        local c = redis.call("INCR", qk .. ":pc")
        redis.call("ZADD", qk .. ":prioritized", priority * 4294967296 + (c % 4294967296), id)
      elseif field(i, 9) == "1" then
        redis.call("RPUSH", qk .. ":wait", id)
      else
        redis.call("LPUSH", qk .. ":wait", id)
      end
      q.wake = true
      emit(qk, "waiting", "jobId", id)
    end
    if pk then
      redis.call("SADD", pk .. ":dependencies", jk)
    end
  end
end

for qk, q in pairs(queues) do
  if q.wake and not q.blocked then
    redis.call("ZADD", qk .. ":marker", 0, "0")
  end
  if q.delayed then
    local first = redis.call("ZRANGE", qk .. ":delayed", 0, 0, "WITHSCORES")
    if first[2] then
      redis.call("ZADD", qk .. ":marker", tonumber(first[2]) / 4096, "1")
    end
  end
end
-- a parent whose children all turned out finished (existing completed jobs) goes on now
for _, p in pairs(parents) do
  releaseIfReady(p, now)
end

local out = {"ok"}
for i = 1, n do
  out[i + 1] = ids[i]
end
return out
