--- @include "check_lease"
local s, refused = check_lease(state, leases, task_id, token, team)
if not s then return refused end
local ttl = tonumber(result_ttl_ms)
-- Completed tasks leave with their results: trim those older than the result TTL.
for _, old in ipairs(redis.call('ZRANGEBYSCORE', completed, '-inf', now - ttl,
                                'LIMIT', 0, 100)) do
  redis.call('HDEL', spec, old)
  redis.call('HDEL', state, old)
  redis.call('ZREM', completed, old)
end
redis.call('ZREM', leases, task_id)
redis.call('ZADD', completed, now, task_id)
s.status = 'completed'
put_state(state, task_id, s)
redis.call('SET', result, result_json, 'PX', ttl)
emit('task.completed', 'team', team, 'task_id', task_id, 'agent', s.holder,
     'token', s.token)
return 1
