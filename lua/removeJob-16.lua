--[[
  Removes a job in any state but active-and-locked, with its pending children when it is a
  parent of a flow (BullMQ's removeJob; includes/children); a flow's child leaves its
  parent's dependencies.
  Not idempotent (the second call finds nothing: -1).

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix, ARGV[2] job id
  Output:
    1 removed, 0 locked, or a pending descendant locked (left alone), -1 no such job, -8
    current scheduler iteration
  Events: removed (prev = the state it was in), also for each child removed; in a parent's queue: waiting (prev
  waiting-children) when the job was a flow's last pending child (includes/parent)
]]
--- @include "includes/keys"
--- @include "includes/events"
--- @include "includes/state"
--- @include "includes/remove"
--- @include "includes/scheduler"
--- @include "includes/parent"
--- @include "includes/children"

local id = ARGV[2]
local jk = qp .. id
if not jobExists(jk) then
  return -1
end
if isCurrentIteration(id) then
  return -8
end
if treeLocked(jk, 0) then
  return 0
end
removeChildren(jk, 0)
local state = jobState(id)
takeOut(id, state)
redis.call("SREM", stalledKey, id)
local parent = parentOf(jk)
if parent then
  childRemoved(parent, jk)
end
removeJobKeys(id)
emit("removed", "jobId", id, "prev", state)
return 1
