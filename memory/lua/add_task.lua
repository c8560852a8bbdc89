--- @include "task_state"
--- @include "per_minute"
--- @include "task_counts"
-- Queue a task; a task id that exists changes nothing (so a retried add is harmless).
if redis.call('HEXISTS', spec, task_id) == 1 then return 0 end
local seq_number = redis.call('INCR', seq)
-- Scores stay exact doubles: (10 - priority) * 2^40 + seq is below 2^53.
local score = (10 - tonumber(priority)) * 1099511627776 + seq_number
redis.call('HSET', spec, task_id, spec_json)
redis.call('HSET', state, task_id,
           encode_state('pending', 0, '', '', string.format('%.0f', score), task_type))
redis.call('ZADD', queue, score, task_id)
redis.call('ZADD', waiting, now, task_id)
count_per_minute(queue_changes, math.floor(now / 60000), 1, RECENT_MINUTES)
count_task(series, series_leaving, totals, 'tasks_added', task_type, 1)
redis.call('SADD', types, task_type)
elsewhere('ZADD', teams, now, team)
emit('task.added', 'team', team, 'task_id', task_id, 'task_type', task_type,
     'priority', priority)
return 1
