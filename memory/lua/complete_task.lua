--- @include "check_lease"
--- @include "finished"
--- @include "trim_completed"
-- Complete a claimed task with its result. Fenced (check_lease) and idempotent: sent
-- again after it took effect, it answers the same.
if finished_before(finished, result, task_id, token, agent, result_json) then return 1 end
local refused, attempts, holder, score, task_type = check_lease(state, leases, task_id,
                                                                token, agent, team)
if refused then return refused end
local ttl = tonumber(result_ttl_ms)
trim_completed(spec, state, finished, completed, now - ttl)
redis.call('ZREM', leases, task_id)
redis.call('ZADD', completed, now, task_id)
redis.call('HSET', state, task_id,
           encode_state('completed', attempts, holder, token, score, task_type))
redis.call('SET', result, result_json, 'PX', ttl)
record_finish(finished, task_id, token, holder, 'completed')
emit('task.completed', 'team', team, 'task_id', task_id, 'agent', holder, 'token', token)
return 1
