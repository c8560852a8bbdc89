--- @include "pattern_indexes"
--- @include "fail"
-- Deciding deletes the staged record and writes the decision in one script, so of two
-- validators racing on one pattern exactly one sees it staged; the other gets DECIDED.
local done = redis.call('HMGET', pattern_decision, 'decision', 'by')
if done[1] then
  return fail('DECIDED', 'pattern ' .. pattern_id .. ' was already ' .. done[1] .. ' by ' .. done[2])
end
local rec = redis.call('HMGET', pattern, 'json', 'member', 'agent')
if not rec[1] then
  return fail('NOTFOUND', 'no staged pattern ' .. pattern_id .. ' (never staged, or expired)')
end
-- `check_team`: only a pattern of `team` ('' the org-wide ones) is decided.
if check_team ~= '' then
  local entry = redis.call('HGET', patterns_team_of, pattern_id)
  local of = entry and entry_team(entry) or (cjson.decode(rec[1]).team or '')
  if of ~= team then
    return fail('NOTFOUND', 'pattern ' .. pattern_id .. ' is not staged in '
                .. (team == '' and 'the org-wide patterns' or 'team ' .. team))
  end
end
redis.call('DEL', pattern)
redis.call('ZREM', patterns_staged, rec[2])
sorted_remove(patterns_by_confidence, patterns_by_staged_at, {rec[2]})
local entry = team_remove(team_index(patterns_team_expiry, patterns_team_confidence,
                                     patterns_team_staged_at, patterns_team_of),
                          pattern_id, rec[2])
-- When it would have expired, who staged it, and its team entry: what an undo needs to
-- restage it.
redis.call('HSET', pattern_decision, 'decision', decision, 'by', actor, 'reason', reason,
           'at', now, 'json', rec[1], 'expires', member_expiry(rec[2]), 'agent', rec[3])
if entry then redis.call('HSET', pattern_decision, 'team_entry', entry) end
-- Counted for its team (a pattern from before teams were kept: org-wide).
local kind = 'patterns_' .. decision
local of_team = entry and entry_team(entry) or ''
count_series(patterns_series, patterns_series_leaving, team_series(of_team, kind),
             math.floor(now / 60000), 1)
redis.call('HINCRBY', patterns_totals, team_total(of_team, kind), 1)
redis.call('PEXPIRE', pattern_decision, decision_ttl_ms)
emit('pattern.' .. decision, 'pattern_id', pattern_id, 'reason', reason)
return rec[1]
