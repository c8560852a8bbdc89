--- @include "check_lease"
local refused, attempts, holder, score, task_type = check_lease(state, leases, task_id,
                                                                token, team)
if refused then return refused end
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
redis.call('HSET', state, task_id,
           encode_state('completed', attempts, holder, token, score, task_type))
redis.call('SET', result, result_json, 'PX', ttl)
emit('task.completed', 'team', team, 'task_id', task_id, 'agent', holder, 'token', token)
return 1
