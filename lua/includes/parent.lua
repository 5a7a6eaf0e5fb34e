--[[
  Flows: what a child's finish does to its parent, as BullMQ 6's finish does (the parent may
  sit in another queue of the same prefix; shared/bullmq-protocol.md §1.2, §2.1). A child
  carries `parentKey` (the parent's full key) and `parent` (JSON: id, queueKey and at most one
  of the failure policies fpof, cpof, idof, rdof).

  parentOf(jk): for job key `jk`, nil when the job has no parent (one HMGET: the only cost
  for a job outside a flow), else {key, queue key, id, decoded `parent` JSON or {}}. Without
  a readable `parent` field the parent's queue key and id come from `parentKey` (its last
  ':' part is the id).

  parentToReady(p, now): moves the parent, out of waiting-children already, to where its
  options put it: delayed (its `delay` from now; event delayed), else prioritized or the
  front of wait (event waiting, prev waiting-children), waking its queue's workers unless
  that queue is paused or at its global concurrency. `now` nil: its delay is not applied
  (a removal, which BullMQ releases to wait at once).

  releaseIfReady(p, now): the parent goes to ready if it still exists, has no pending
  dependency and is in waiting-children.

  childCompleted(p, jk, value, now): `jk` leaves the parent's dependencies, its return value
  goes into the parent's `:processed`, then releaseIfReady. Nothing when `jk` was no longer a
  dependency (a repeated finish, a child removed from its parent).

  childRemoved(p, jk): a child removed (not finished) leaves its parent's dependencies,
  and the parent, when nothing is pending, goes to ready, as BullMQ's remove does.

  childFailed(p, jk, reason, now, deleted): a child failed for good, by its policy:
    fpof: recorded in `:unsuccessful`; the parent, waiting for children or delayed, goes to
      ready marked `defa` "child <jk> failed", so that its next fetch fails it (or only
      marked, unless it already failed);
    cpof: recorded in `:failed`, the parent goes to ready even with dependencies pending;
    idof: recorded in `:failed`, the dependency released;
    rdof: the dependency released.
  With no policy the parent keeps waiting, unless the child is `deleted` as it fails (keep
  count 0): a removed child no longer holds its parent.
]]
local function parentOf(jk)
  local f = redis.call("HMGET", jk, "parentKey", "parent")
  if not f[1] and not f[2] then
    return nil
  end
  local data = {}
  if f[2] then
    local ok, v = pcall(cjson.decode, f[2])
    if ok and type(v) == "table" then
      data = v
    end
  end
  local pqk, pid = data["queueKey"], data["id"]
  if type(pqk) ~= "string" or (type(pid) ~= "string" and type(pid) ~= "number") then
    if type(f[1]) ~= "string" then
      return nil
    end
    pqk, pid = string.match(f[1], "^(.*):([^:]+)$")
    if not pqk then
      return nil
    end
  end
  pid = tostring(pid)
  return {key = f[1] or (pqk .. ":" .. pid), queue = pqk, id = pid, data = data}
end

local function parentToReady(p, now)
  local pqk, pid = p.queue, p.id
  local a = redis.call("HMGET", p.key, "priority", "delay")
  local priority, delay = tonumber(a[1]) or 0, tonumber(a[2]) or 0
  local marker, events = pqk .. ":marker", pqk .. ":events"
  if delay > 0 and now then
    local due = tonumber(now) + delay
    local dk = pqk .. ":delayed"
    redis.call("ZADD", dk, due * 4096, pid)
    redis.call("XADD", events, "*", "event", "delayed", "jobId", pid, "delay", due)
    local first = redis.call("ZRANGE", dk, 0, 0, "WITHSCORES")
    redis.call("ZADD", marker, math.floor(tonumber(first[2]) / 4096), "1")
    return
  end
  if priority > 0 then
    local n = redis.call("INCR", pqk .. ":pc")
    redis.call("ZADD", pqk .. ":prioritized", priority * 4294967296 + (n % 4294967296), pid)
  else
    redis.call("RPUSH", pqk .. ":wait", pid)
  end
  local m = redis.call("HMGET", pqk .. ":meta", "paused", "concurrency")
  if not m[1] and not (m[2] and redis.call("LLEN", pqk .. ":active") >= tonumber(m[2])) then
    redis.call("ZADD", marker, 0, "0")
  end
  redis.call("XADD", events, "*", "event", "waiting", "jobId", pid, "prev", "waiting-children")
end

local function releaseIfReady(p, now)
  if redis.call("SCARD", p.key .. ":dependencies") == 0 and redis.call("EXISTS", p.key) == 1
      and redis.call("ZREM", p.queue .. ":waiting-children", p.id) == 1 then
    parentToReady(p, now)
  end
end

local function childCompleted(p, jk, value, now)
  if redis.call("SREM", p.key .. ":dependencies", jk) == 1 then
    redis.call("HSET", p.key .. ":processed", jk, value)
    releaseIfReady(p, now)
  end
end

local function childRemoved(p, jk)
  if redis.call("SREM", p.key .. ":dependencies", jk) == 1 then
    releaseIfReady(p, nil)
  end
end

local function childFailed(p, jk, reason, now, deleted)
  local d = p.data
  if not (d["fpof"] or d["cpof"] or d["idof"] or d["rdof"] or deleted) then
    return
  end
  if redis.call("SREM", p.key .. ":dependencies", jk) == 0 then
    return
  end
  if d["fpof"] then
    redis.call("ZADD", p.key .. ":unsuccessful", now, jk)
    if redis.call("EXISTS", p.key) == 0 then
      return
    end
    local why = "child " .. jk .. " failed"
    if redis.call("ZREM", p.queue .. ":waiting-children", p.id) == 1 then
      redis.call("HSET", p.key, "defa", why)
      parentToReady(p, now)
    elseif redis.call("ZREM", p.queue .. ":delayed", p.id) == 1 then
      redis.call("HSET", p.key, "delay", 0, "defa", why)
      parentToReady(p, now)
    elseif not redis.call("ZSCORE", p.queue .. ":failed", p.id) then
      redis.call("HSET", p.key, "defa", why)
    end
  elseif d["cpof"] then
    redis.call("HSET", p.key .. ":failed", jk, reason)
    if redis.call("EXISTS", p.key) == 1
        and redis.call("ZREM", p.queue .. ":waiting-children", p.id) == 1 then
      parentToReady(p, now)
    end
  else
    if d["idof"] then
      redis.call("HSET", p.key .. ":failed", jk, reason)
    end
    releaseIfReady(p, now)
  end
end
