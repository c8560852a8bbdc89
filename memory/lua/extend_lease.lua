--- @include "check_lease"
local s, refused = check_lease(state, leases, task_id, token, team)
if not s then return refused end
local deadline = now + tonumber(lease_ms)
redis.call('ZADD', leases, deadline, task_id)
emit('task.lease_extended', 'team', team, 'task_id', task_id, 'agent', s.holder)
return deadline
