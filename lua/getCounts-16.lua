--[[
  Job counts per state in one step. Read-only, idempotent.

  Input:
    KEYS[1..16] the queue keys
    ARGV[1] key prefix
  Output:
    {waiting, active, delayed, prioritized, completed, failed, paused, waiting-children}
]]
--- @include "includes/keys"

return {redis.call("LLEN", waitKey), redis.call("LLEN", activeKey),
  redis.call("ZCARD", delayedKey), redis.call("ZCARD", prioritizedKey),
  redis.call("ZCARD", completedKey), redis.call("ZCARD", failedKey),
  redis.call("LLEN", pausedKey), redis.call("ZCARD", waitingChildrenKey)}
