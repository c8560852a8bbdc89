--- @include "check_lease"
--- @include "finished"
--- @include "trim_completed"
--- @include "task_counts"
--- @include "timings"
-- Complete a claimed task with its result. Fenced (check_lease) and idempotent: sent
-- again after it took effect, it answers the same. How long the claim was held goes in
-- the timings of its task type and of its holder.
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
count_task(series, series_leaving, totals, 'tasks_completed', task_type, 1)
if record_timings(held_for(token), agent_timings, type_timings) then
  note_agent(timings_agents, holder)
end
emit('task.completed', 'team', team, 'task_id', task_id, 'agent', holder, 'token', token)
return 1
