-- clock(): the server's clock in milliseconds, so leases and timestamps never depend on
-- a client's clock. A function whose Lua reads `now` sets it from this first
-- (memory/scripts.py).
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
