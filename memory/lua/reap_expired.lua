--- @include "reap"
return reap(state, queue, leases, dead, queue_changes, waiting, series, series_leaving, totals,
            task_type, max_attempts, team, batch)
