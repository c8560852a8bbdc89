--- @include "pattern_indexes"
--- @include "fail"
-- Undo: only the validator who decided, only within the window (server time), and only
-- while the pattern would not yet have expired. The pattern goes back exactly as it
-- was (same staged_at) until the moment it would have expired anyway, and the decision
-- record goes, so the pattern can be decided again.
local rec = redis.call('HMGET', pattern_decision, 'decision', 'by', 'at', 'json', 'expires',
                       'agent', 'team_entry')
if not rec[1] then
  return fail('NOTFOUND', 'pattern ' .. pattern_id .. ' has no recent decision to undo')
end
if rec[2] ~= actor then
  return fail('DECIDED', 'pattern ' .. pattern_id .. ' was ' .. rec[1] .. ' by ' .. rec[2]
              .. '; only ' .. rec[2] .. ' can undo that')
end
local window = tonumber(window_ms)
local age = now - tonumber(rec[3])
if age > window then
  return fail('STATE', 'too late to undo the decision on ' .. pattern_id .. ': it was made '
              .. string.format('%.1f', age / 1000) .. ' s ago, and undo works for '
              .. string.format('%d', window / 1000) .. ' s')
end
if redis.call('EXISTS', pattern) == 1 then
  return fail('STATE', 'pattern ' .. pattern_id .. ' is staged again already')
end
local expiry = tonumber(rec[5])
if expiry <= now then
  return fail('STATE', 'pattern ' .. pattern_id .. ' would have expired by now; it cannot go back')
end
local member = pattern_member(expiry, pattern_id)
redis.call('HSET', pattern, 'json', rec[4], 'agent', rec[6], 'member', member)
redis.call('PEXPIRE', pattern, expiry - now)
redis.call('ZADD', patterns_staged, 0, member)
sorted_add(patterns_by_confidence, patterns_by_staged_at, member, rec[4])
if rec[7] then
  team_add(team_index(patterns_team_expiry, patterns_team_confidence, patterns_team_staged_at,
                      patterns_team_of), pattern_id, rec[7], member)
end
redis.call('DEL', pattern_decision)
emit('pattern.restored', 'pattern_id', pattern_id, 'undone', rec[1])
return {rec[4], expiry - now}
