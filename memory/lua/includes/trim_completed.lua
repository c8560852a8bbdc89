-- Completed tasks leave with their results: forget (at most 100 of) those completed
-- before `cutoff` (server ms), whose results have expired.
local function trim_completed(spec, state, finished, completed, cutoff)
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', completed, '-inf', cutoff,
                                  'LIMIT', 0, 100)) do
    redis.call('HDEL', spec, old)
    redis.call('HDEL', state, old)
    redis.call('HDEL', finished, old)
    redis.call('ZREM', completed, old)
  end
end
