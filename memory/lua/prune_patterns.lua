--- @include "pattern_indexes"
-- Sweep patterns that expired undecided out of the indexes; returns how many.
local gone = sweep_expired(patterns_staged, patterns_expired_per_minute,
                           patterns_expired_log, patterns_by_confidence,
                           patterns_by_staged_at,
                           team_index(patterns_team_expiry, patterns_team_confidence,
                                      patterns_team_staged_at, patterns_team_of,
                                      patterns_expired_team_minute,
                                      patterns_expired_team_fields, patterns_totals))
if #gone > 0 then
  local ids = {}
  for i = 1, math.min(#gone, 20) do table.insert(ids, member_id(gone[i])) end
  emit('pattern.expired', 'count', #gone, 'pattern_ids', table.concat(ids, ','))
end
return #gone
