--[[
  recordFailure(id, reason, stackLimit, stack): sets failedReason and, unless `stackLimit` is
  "", appends `stack` to the JSON array in `stacktrace` (a malformed array is replaced), then
  keeps the newest `stackLimit` lines (> 0), all ("0") or none (< 0): BullMQ's stackTraceLimit,
  as the core resolved it from the job's options (jobq__stack_trim is the same rule in C).
]]
local function recordFailure(id, reason, stackLimit, stack)
  local jk = qp .. id
  if stackLimit ~= "" then
    local lines = {}
    local raw = redis.call("HGET", jk, "stacktrace")
    if raw then
      local ok, v = pcall(cjson.decode, raw)
      if ok and type(v) == "table" then
        lines = v
      end
    end
    lines[#lines + 1] = stack
    local limit = tonumber(stackLimit) or 0
    if limit ~= 0 then
      local keep = limit < 0 and 0 or math.min(limit, #lines)
      local kept = {}
      for i = #lines - keep + 1, #lines do
        kept[#kept + 1] = lines[i]
      end
      lines = kept
    end
    -- cjson writes an empty table as {}; Node reads the field as a JSON array
    redis.call("HSET", jk, "stacktrace", #lines == 0 and "[]" or cjson.encode(lines))
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
