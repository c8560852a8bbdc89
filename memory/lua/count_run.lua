-- A fixed window: the first run of a window starts its clock. Returns 0 when the run
-- may go ahead, else the milliseconds until the window ends (at least 1).
local count = redis.call('INCR', runs)
if count == 1 then redis.call('PEXPIRE', runs, window_ms) end
if count <= tonumber(limit) then return 0 end
return math.max(redis.call('PTTL', runs), 1)
