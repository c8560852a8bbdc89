--- @include "series"
-- A team's own counts of what happens to its tasks (memory/series.py, TASK_KINDS): its
-- series (fields "<kind>\0<minute>" and "<kind>\0h<hour>", own_series) and its all-time
-- totals by kind and task type ("<kind>\0<task type>", task_total), in its hash slot.
local function count_task(series, series_leaving, totals, kind, task_type, n)
  count_series(series, series_leaving, kind .. '\0', math.floor(now / 60000), n)
  redis.call('HINCRBY', totals, kind .. '\0' .. task_type, n)
end
