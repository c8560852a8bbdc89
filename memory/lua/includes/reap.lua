--- @include "task_state"
--- @include "per_minute"
--- @include "task_counts"
-- Leases of one task type that ran out, by the server's clock, put their tasks back in
-- the queue at their old place (pending again from now), or in the dead-letter set once
-- they have used up their attempts. Each is counted as a lease expired, and as
-- dead-lettered when it goes there. One call reaps at most `batch`, to keep the script
-- short. Returns how many.
local function reap(state, queue, leases, dead, queue_changes, waiting, series,
                    series_leaving, totals, task_type, max_attempts, team, batch)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, batch)
  local reaped, buried = 0, 0
  for _, id in ipairs(expired) do
    local _, attempts, holder, _, score, of_type = decode_state(redis.call('HGET', state, id))
    if attempts and of_type == task_type then
      redis.call('ZREM', leases, id)
      local status = 'pending'
      if attempts >= tonumber(max_attempts) then
        status = 'dead'
        buried = buried + 1
        redis.call('ZADD', dead, now, id)
        emit('task.dead_lettered', 'team', team, 'task_id', id, 'holder', holder,
             'attempts', attempts, 'reason', 'lease expired')
      else
        redis.call('ZADD', queue, tonumber(score), id)
        redis.call('ZADD', waiting, now, id)
        count_per_minute(queue_changes, math.floor(now / 60000), 1, RECENT_MINUTES)
        emit('task.lease_expired', 'team', team, 'task_id', id, 'holder', holder,
             'attempts', attempts)
      end
      redis.call('HSET', state, id, encode_state(status, attempts, '', '', score, of_type))
      reaped = reaped + 1
    end
  end
  if reaped > 0 then
    count_task(series, series_leaving, totals, 'tasks_lease_expired', task_type, reaped)
  end
  if buried > 0 then
    count_task(series, series_leaving, totals, 'tasks_dead_lettered', task_type, buried)
  end
  return reaped
end
