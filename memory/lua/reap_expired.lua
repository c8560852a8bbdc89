--- @include "reap"
return reap(state, queue, leases, dead, queue_changes, task_type, max_attempts, team, batch)
