--[[
  recordFailure(id, reason, hasStack, stack): sets failedReason and appends `stack` to the
  JSON array in `stacktrace` (a malformed array is replaced).
]]
local function recordFailure(id, reason, hasStack, stack)
  local jk = qp .. id
  if hasStack == "1" then
    local lines = {}
    local raw = redis.call("HGET", jk, "stacktrace")
    if raw then
      local ok, v = pcall(cjson.decode, raw)
      if ok and type(v) == "table" then
        lines = v
      end
    end
    lines[#lines + 1] = stack
    redis.call("HSET", jk, "stacktrace", cjson.encode(lines))
  end
  redis.call("HSET", jk, "failedReason", reason)
end
local function jobIsLifo(id)
  local raw = redis.call("HGET", qp .. id, "opts")
  if raw then
    local ok, o = pcall(cjson.decode, raw)
    if ok and type(o) == "table" and o["lifo"] == true then
      return true
    end
  end
  return false
end
