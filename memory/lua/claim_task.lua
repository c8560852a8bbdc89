--- @include "task_state"
--- @include "per_minute"
--- @include "reap"
-- Claim the first task of the queue, after reaping this type's expired leases. The
-- lease carries a fencing token from the team's counter.
reap(state, queue, leases, dead, queue_changes, task_type, max_attempts, team, batch)
local id = redis.call('ZPOPMIN', queue)[1]
if not id then return nil end
local _, attempts, _, _, score, of_type = decode_state(redis.call('HGET', state, id))
attempts = attempts + 1
local fencing_token = redis.call('INCR', fence)
redis.call('HSET', state, id,
           encode_state('claimed', attempts, agent, fencing_token, score, of_type))
local deadline = now + tonumber(lease_ms)
redis.call('ZADD', leases, deadline, id)
count_per_minute(queue_changes, math.floor(now / 60000), -1, RECENT_MINUTES)
emit('task.claimed', 'team', team, 'task_id', id, 'task_type', task_type, 'agent', agent,
     'token', fencing_token, 'attempts', attempts)
return {redis.call('HGET', spec, id), fencing_token, deadline, attempts}
