-- A fixed window: the first run of a window starts its clock. Returns 0 when the run
-- may go ahead, -1 while the caller is suspended (nothing counted), else the
-- milliseconds until the window ends (at least 1).
if redis.call('EXISTS', suspended) == 1 then return -1 end
local count = redis.call('INCR', runs)
if count == 1 then redis.call('PEXPIRE', runs, window_ms) end
if count <= tonumber(limit) then return 0 end
return math.max(redis.call('PTTL', runs), 1)
