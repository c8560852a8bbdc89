--- @include "reap"
-- Claim the first task of the queue, after reaping this type's expired leases. The
-- lease carries a fencing token from the team's counter.
reap(state, queue, leases, dead, queue_changes, task_type, max_attempts, team, batch)
local id = redis.call('ZPOPMIN', queue)[1]
if not id then return nil end
local s = get_state(state, id)
s.attempts = s.attempts + 1
s.status = 'claimed'
s.holder = agent
s.token = redis.call('INCR', fence)
put_state(state, id, s)
local deadline = now + tonumber(lease_ms)
redis.call('ZADD', leases, deadline, id)
count_per_minute(queue_changes, math.floor(now / 60000), -1, RECENT_MINUTES)
emit('task.claimed', 'team', team, 'task_id', id, 'task_type', task_type, 'agent', agent,
     'token', s.token, 'attempts', s.attempts)
return {redis.call('HGET', spec, id), s.token, deadline, s.attempts}
