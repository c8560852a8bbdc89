--- @include "check_lease"
--- @include "per_minute"
-- Give a claimed task up: back to its queue (retry, with attempts left) or to the
-- dead-letter set. Returns the new status.
local s, refused = check_lease(state, leases, task_id, token, team)
if not s then return refused end
redis.call('ZREM', leases, task_id)
local holder = s.holder
s.holder = ''
s.token = ''
redis.call('SET', result, error_json, 'PX', tonumber(result_ttl_ms))
if retry == '1' and s.attempts < tonumber(max_attempts) then
  s.status = 'pending'
  redis.call('ZADD', queue, tonumber(s.score), task_id)
  count_per_minute(queue_changes, math.floor(now / 60000), 1, RECENT_MINUTES)
else
  s.status = 'dead'
  redis.call('ZADD', dead, now, task_id)
end
put_state(state, task_id, s)
emit('task.failed', 'team', team, 'task_id', task_id, 'agent', holder,
     'attempts', s.attempts, 'status', s.status)
return s.status
