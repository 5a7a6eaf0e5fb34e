--[[
  BullMQ's keepLastIfActive (a deduplication option): the latest add deduplicated while the
  owner of the dedup id was active is kept in `dn:<id>` (a hash: name, data, opts, jid; for
  flow children and scheduler iterations also pk, pd, pdk, rjk, as Node writes them) and
  becomes a job when the owner finishes.

  stashIfActive(owner, dedupId, id, name, data, opts): if job `owner` is active, stores the
  add (job id `id`) in dn: in place of an older one, keeps de: from expiring while the owner
  runs, and returns true; else false.

  requeueStashed(deid, now): a job with dedup id `deid` finished (completed, or failed for
  good): the stash, if there is one, becomes a job as an add makes it (the id counter moves
  by one; id the stashed jid, else that number; the dedup key points at it, without expiry
  for keepLastIfActive, else with the option's ttl; events added, then waiting or delayed; a
  flow child joins its parent's dependencies), and the stash goes. A stashed custom id that
  names a job already is not overwritten (event duplicated).
]]
--- @include "events"
--- @include "markers"
--- @include "scores"

local function stashIfActive(owner, dedupId, id, name, data, opts)
  if not redis.call("LPOS", activeKey, owner) then
    return false
  end
  local nk = qp .. "dn:" .. dedupId
  redis.call("DEL", nk)
  redis.call("HSET", nk, "name", name, "data", data, "opts", opts, "jid", id)
  redis.call("PERSIST", qp .. "de:" .. dedupId)
  return true
end

local function requeueStashed(deid, now)
  if not deid or deid == "" then
    return
  end
  local nk = qp .. "dn:" .. deid
  local s = redis.call("HMGET", nk, "name", "data", "opts", "jid", "pk", "pd", "pdk", "rjk")
  if not (s[1] or s[2] or s[3] or s[4]) then
    return
  end
  local counter = redis.call("INCR", idKey)
  local id = s[4] or tostring(counter)
  local jk = qp .. id
  redis.call("DEL", nk)
  if redis.call("EXISTS", jk) == 1 then
    emit("duplicated", "jobId", id)
    return
  end
  local ok, o = pcall(cjson.decode, s[3] or "{}")
  if not ok or type(o) ~= "table" then
    o = {}
  end
  local de = type(o.de) == "table" and o.de or {}
  local dk = qp .. "de:" .. deid
  local ttl = tonumber(de.ttl)
  if de.keepLastIfActive or not ttl or ttl <= 0 then
    redis.call("SET", dk, id)
  else
    redis.call("SET", dk, id, "PX", math.floor(ttl))
  end
  local delay, priority = math.floor(tonumber(o.delay) or 0), math.floor(tonumber(o.priority) or 0)
  local fields = {"name", s[1] or "", "data", s[2] or "{}", "opts", s[3] or "{}",
    "timestamp", now, "delay", delay, "priority", priority, "deid", deid}
  if s[5] then
    fields[#fields + 1], fields[#fields + 2] = "parentKey", s[5]
    fields[#fields + 1], fields[#fields + 2] = "parent", s[6] or "{}"
  end
  if s[8] then
    fields[#fields + 1], fields[#fields + 2] = "rjk", s[8]
  end
  redis.call("HSET", jk, unpack(fields))
  emit("added", "jobId", id, "name", s[1] or "")
  if delay > 0 then
    local due = tonumber(now) + delay
    redis.call("ZADD", delayedKey, delayedScore(due), id)
    emit("delayed", "jobId", id, "delay", due)
    markNextDelayed()
  else
    if priority > 0 then
      redis.call("ZADD", prioritizedKey, priorityScore(priority), id)
    elseif o.lifo then
      redis.call("RPUSH", waitKey, id)
    else
      redis.call("LPUSH", waitKey, id)
    end
    wakeWorkers()
    emit("waiting", "jobId", id)
  end
  if s[7] then
    redis.call("SADD", s[7], jk)
  end
end
