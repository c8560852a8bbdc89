--- @include "task_state"
--- @include "per_minute"
--- @include "fail"
-- A steward's requeue or cancel of a task that is not finished, wherever it is. A
-- requeued task is pending from now, unless it was pending already.
local status, _, _, _, score, of_type = decode_state(redis.call('HGET', state, task_id))
if not status or of_type ~= task_type then
  return fail('NOTFOUND', 'no task ' .. task_id .. ' in team ' .. team)
end
if status == 'completed' or status == 'cancelled' then
  return fail('STATE', 'task ' .. task_id .. ' is already ' .. status)
end
local was_pending = redis.call('ZREM', queue, task_id) == 1
redis.call('ZREM', leases, task_id)
redis.call('ZREM', dead, task_id)
local minute = math.floor(now / 60000)
if action == 'requeue' then
  redis.call('ZADD', queue, tonumber(score), task_id)
  redis.call('ZADD', waiting, 'NX', now, task_id)
  if not was_pending then count_per_minute(queue_changes, minute, 1, RECENT_MINUTES) end
  redis.call('HSET', state, task_id, encode_state('pending', 0, '', '', score, task_type))
  emit('task.requeued', 'team', team, 'task_id', task_id)
else
  redis.call('HDEL', spec, task_id)
  redis.call('ZREM', waiting, task_id)
  redis.call('HDEL', state, task_id)
  redis.call('HDEL', finished, task_id)
  redis.call('DEL', result)
  if was_pending then count_per_minute(queue_changes, minute, -1, RECENT_MINUTES) end
  emit('task.cancelled', 'team', team, 'task_id', task_id)
end
return 1
