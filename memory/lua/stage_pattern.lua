--- @include "pattern_indexes"
--- @include "fail"
-- Stage a pattern. Restaging your own id replaces it; another agent's id is refused,
-- and so is an id that was decided. Returns the stored JSON, with staged_at. `team` is
-- the pattern's team ('' when org-wide), resolved by the caller. A pattern not staged
-- before (restaging replaces) is counted for its team (series.lua).
if redis.call('EXISTS', pattern_decision) == 1 then
  return fail('DECIDED', 'pattern ' .. pattern_id .. ' was already decided; stage it under a new id')
end
local old = redis.call('HMGET', pattern, 'agent', 'member')
if old[1] and old[1] ~= agent_id then
  return fail('TAKEN', 'pattern ' .. pattern_id .. ' is already staged by ' .. old[1])
end
local teams = team_index(patterns_team_expiry, patterns_team_confidence,
                         patterns_team_staged_at, patterns_team_of,
                         patterns_expired_team_minute,
                         patterns_expired_team_fields, patterns_totals)
local expired = sweep_expired(patterns_staged, patterns_expired_per_minute,
                              patterns_expired_log, patterns_by_confidence,
                              patterns_by_staged_at, teams)
if old[2] then
  redis.call('ZREM', patterns_staged, old[2])
  sorted_remove(patterns_by_confidence, patterns_by_staged_at, {old[2]})
  team_remove(teams, pattern_id, old[2])
end
local ttl = tonumber(ttl_ms)
local member = pattern_member(now + ttl, pattern_id)
local body = '{"staged_at":' .. string.format('%.3f', now / 1000) .. ','
             .. string.sub(pattern_json, 2)
redis.call('HSET', pattern, 'json', body, 'agent', agent_id, 'member', member)
redis.call('PEXPIRE', pattern, ttl)
redis.call('ZADD', patterns_staged, 0, member)
redis.call('ZADD', patterns_by_confidence, confidence, member)
redis.call('ZADD', patterns_by_staged_at, now, member)
team_add(teams, pattern_id, team_entry(team, confidence_key, now), member)
if not old[1] then
  count_series(patterns_series, patterns_series_leaving, team_series(team, 'patterns_staged'),
               math.floor(now / 60000), 1)
  redis.call('HINCRBY', patterns_totals, team_total(team, 'patterns_staged'), 1)
end
if #expired > 0 then
  emit('pattern.staged', 'pattern_id', pattern_id, 'agent', agent_id, 'expired', #expired)
else
  emit('pattern.staged', 'pattern_id', pattern_id, 'agent', agent_id)
end
return body
