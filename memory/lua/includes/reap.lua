--- @include "task_state"
--- @include "per_minute"
-- Leases of one task type that ran out, by the server's clock, put their tasks back in
-- the queue at their old place, or in the dead-letter set once they have used up their
-- attempts. One call reaps at most `batch`, to keep the script short. Returns how many.
local function reap(state, queue, leases, dead, queue_changes, task_type, max_attempts,
                    team, batch)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, batch)
  local reaped = 0
  for _, id in ipairs(expired) do
    local _, attempts, holder, _, score, of_type = decode_state(redis.call('HGET', state, id))
    if attempts and of_type == task_type then
      redis.call('ZREM', leases, id)
      local status = 'pending'
      if attempts >= tonumber(max_attempts) then
        status = 'dead'
        redis.call('ZADD', dead, now, id)
        emit('task.dead_lettered', 'team', team, 'task_id', id, 'holder', holder,
             'attempts', attempts, 'reason', 'lease expired')
      else
        redis.call('ZADD', queue, tonumber(score), id)
        count_per_minute(queue_changes, math.floor(now / 60000), 1, RECENT_MINUTES)
        emit('task.lease_expired', 'team', team, 'task_id', id, 'holder', holder,
             'attempts', attempts)
      end
      redis.call('HSET', state, id, encode_state(status, attempts, '', '', score, of_type))
      reaped = reaped + 1
    end
  end
  return reaped
end
