--- @include "check_lease"
local refused, _, holder = check_lease(state, leases, task_id, token, team)
if refused then return refused end
local deadline = now + tonumber(lease_ms)
redis.call('ZADD', leases, deadline, task_id)
emit('task.lease_extended', 'team', team, 'task_id', task_id, 'agent', holder)
return deadline
