--- @include "fail"
if redis.call('EXISTS', conflict) == 1 then
  return fail('TAKEN', 'conflict ' .. conflict_id .. ' already exists')
end
local ttl = tonumber(ttl_ms)
redis.call('HSET', conflict, 'topic', topic, 'positions', positions_json, 'created_by', actor,
           'created_at', now, 'status', 'open')
redis.call('PEXPIRE', conflict, ttl)
elsewhere('ZREMRANGEBYSCORE', conflicts, '-inf', now - ttl)
elsewhere('ZADD', conflicts, now, conflict_id)
emit('conflict.created', 'conflict_id', conflict_id)
return 1
