--- @include "fail"
-- Exactly one resolution wins.
local status = redis.call('HGET', conflict, 'status')
if not status then
  return fail('NOTFOUND', 'no conflict ' .. conflict_id .. ' (or it expired)')
end
if status ~= 'open' then
  return fail('DECIDED', 'conflict ' .. conflict_id .. ' was already resolved by '
              .. redis.call('HGET', conflict, 'resolved_by'))
end
redis.call('HSET', conflict, 'status', 'resolved', 'resolution', resolution_json,
           'resolved_by', actor, 'resolved_at', now)
emit('conflict.resolved', 'conflict_id', conflict_id)
return 1
