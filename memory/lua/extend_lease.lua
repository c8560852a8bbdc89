--- @include "check_lease"
-- Push a held lease's deadline out. Fenced (check_lease) and idempotent: sent again,
-- it sets the deadline from the server's clock again.
local refused, _, holder = check_lease(state, leases, task_id, token, agent, team)
if refused then return refused end
local deadline = now + tonumber(lease_ms)
redis.call('ZADD', leases, deadline, task_id)
emit('task.lease_extended', 'team', team, 'task_id', task_id, 'agent', holder)
return deadline
