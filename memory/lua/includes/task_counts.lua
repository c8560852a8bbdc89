--- @include "series"
-- A team's own counts of what happens to its tasks (memory/series.py, whose TASK_KINDS
-- these are): its series (fields "<kind>\0<minute>" and "<kind>\0h<hour>", own_series;
-- `series_leaving` holds buckets, series.lua) and its all-time totals by kind and task
-- type ("<kind>\0<task type>", task_total), in its hash slot.
local TASK_KINDS = {'tasks_added', 'tasks_claimed', 'tasks_completed', 'tasks_failed',
                    'tasks_dead_lettered', 'tasks_lease_expired'}

local function count_task(series, series_leaving, totals, kind, task_type, n)
  count_series(series, series_leaving, kind .. '\0', math.floor(now / 60000), n, TASK_KINDS)
  redis.call('HINCRBY', totals, kind .. '\0' .. task_type, n)
end
