--- @include "task_state"
--- @include "per_minute"
--- @include "fail"
-- A steward's requeue or cancel of a task that is not finished, wherever it is.
local s = get_state(state, task_id)
if not s or s.type ~= task_type then
  return fail('NOTFOUND', 'no task ' .. task_id .. ' in team ' .. team)
end
if s.status == 'completed' or s.status == 'cancelled' then
  return fail('STATE', 'task ' .. task_id .. ' is already ' .. s.status)
end
local was_pending = redis.call('ZREM', queue, task_id) == 1
redis.call('ZREM', leases, task_id)
redis.call('ZREM', dead, task_id)
s.holder = ''
s.token = ''
local minute = math.floor(now / 60000)
if action == 'requeue' then
  s.status = 'pending'
  s.attempts = 0
  redis.call('ZADD', queue, tonumber(s.score), task_id)
  if not was_pending then count_per_minute(queue_changes, minute, 1, RECENT_MINUTES) end
  put_state(state, task_id, s)
  emit('task.requeued', 'team', team, 'task_id', task_id)
else
  redis.call('HDEL', spec, task_id)
  redis.call('HDEL', state, task_id)
  redis.call('DEL', result)
  if was_pending then count_per_minute(queue_changes, minute, -1, RECENT_MINUTES) end
  emit('task.cancelled', 'team', team, 'task_id', task_id)
end
return 1
