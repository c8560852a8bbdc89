--- @include "check_lease"
--- @include "per_minute"
--- @include "finished"
--- @include "task_counts"
--- @include "timings"
-- Give a claimed task up: back to its queue (retry, with attempts left) or to the
-- dead-letter set. Returns the new status. Fenced (check_lease) and idempotent: sent
-- again after it took effect, it returns the status the first call returned. Counted
-- as a failure that retries, or as dead-lettered, and as a failure of its holder.
local outcome = finished_before(finished, result, task_id, token, agent, error_json)
if outcome then return outcome end
local refused, attempts, holder, score, task_type = check_lease(state, leases, task_id,
                                                                token, agent, team)
if refused then return refused end
redis.call('ZREM', leases, task_id)
redis.call('SET', result, error_json, 'PX', tonumber(result_ttl_ms))
local status = 'dead'
if retry == '1' and attempts < tonumber(max_attempts) then
  status = 'pending'
  redis.call('ZADD', queue, tonumber(score), task_id)
  redis.call('ZADD', waiting, now, task_id)
  count_per_minute(queue_changes, math.floor(now / 60000), 1, RECENT_MINUTES)
  count_task(series, series_leaving, totals, 'tasks_failed', task_type, 1)
else
  redis.call('ZADD', dead, now, task_id)
  count_task(series, series_leaving, totals, 'tasks_dead_lettered', task_type, 1)
end
if record_timings(nil, agent_timings) then note_agent(timings_agents, holder) end
redis.call('HSET', state, task_id, encode_state(status, attempts, '', '', score, task_type))
record_finish(finished, task_id, token, holder, status)
emit('task.failed', 'team', team, 'task_id', task_id, 'agent', holder,
     'attempts', attempts, 'status', status)
return status
