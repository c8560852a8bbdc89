--- @include "trim_completed"
-- A team leaves the teams index once nothing is left in it: no task in any state
-- (completed ones count until their results expire) and no registered agent. Its
-- counters and series go with it (its timings expire on their own, a day after their
-- last write); a later task or agent brings the team back, new.
-- Empty queues, leases and dead-letter sets do not exist in Redis, so there is
-- nothing of them to delete.
trim_completed(spec, state, finished, completed, now - tonumber(result_ttl_ms))
if redis.call('HLEN', state) > 0 or redis.call('HLEN', agents) > 0 then return 0 end
redis.call('DEL', spec, finished, completed, types, fence, seq, queue_changes, heartbeats,
           series, series_leaving, totals, timings_agents)
elsewhere('ZREM', teams, team)
emit('team.removed', 'team', team)
return 1
