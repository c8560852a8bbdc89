-- now: the server's clock in milliseconds, so leases and timestamps never depend on a
-- client's clock. Scripts that use `now` get this first (memory/scripts.py).
local _t = redis.call('TIME')
local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
