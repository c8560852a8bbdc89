--- @include "pattern_member"
--- @include "per_minute"
--- @include "pattern_teams"
-- Beside the index (ordered by expiry), two sorted sets hold the same members scored by
-- confidence and by staging time (ms), for the queue's other orders. Every script that
-- adds or removes an index member does the same to both, so the three always hold the
-- same patterns.
local function sorted_remove(by_confidence, by_staged_at, members)
  for i = 1, #members, 500 do
    local chunk = {unpack(members, i, math.min(i + 499, #members))}
    redis.call('ZREM', by_confidence, unpack(chunk))
    redis.call('ZREM', by_staged_at, unpack(chunk))
  end
end

local function sorted_add(by_confidence, by_staged_at, member, body)
  local fields = cjson.decode(body)
  redis.call('ZADD', by_confidence, fields.confidence, member)
  redis.call('ZADD', by_staged_at, math.floor(fields.staged_at * 1000 + 0.5), member)
end

-- Patterns nobody decided before they expired are trimmed from the index by range, by
-- any write, whatever TTL each was staged with. They are counted per minute of their
-- expiry, in all (kept about a day) and by team (`teams`: team_index in pattern_teams;
-- a series, series.lua), and the newest 50 noted in a log with their teams, so the
-- dashboard can say how many expired undecided lately. Returns the members trimmed.
local EXPIRED_MINUTES = 1500
local EXPIRED_KEEP_MS = 172800000
local function sweep_expired(index, per_minute, log, by_confidence, by_staged_at, teams)
  local cutoff = member_bound(now)
  local gone = redis.call('ZRANGEBYLEX', index, '-', cutoff)
  if #gone == 0 then return gone end
  sorted_remove(by_confidence, by_staged_at, gone)
  local of_team = team_remove_all(teams, gone)
  for _, member in ipairs(gone) do
    count_per_minute(per_minute, math.floor(member_expiry(member) / 60000), 1, EXPIRED_MINUTES)
  end
  count_team_minutes(teams, gone, of_team)
  redis.call('ZREMRANGEBYLEX', index, '-', cutoff)
  for i = math.max(1, #gone - 49), #gone do
    redis.call('LPUSH', log, expired_entry(gone[i], of_team[i]))
  end
  redis.call('LTRIM', log, 0, 49)
  redis.call('PEXPIRE', log, EXPIRED_KEEP_MS)
  redis.call('PEXPIRE', per_minute, EXPIRED_KEEP_MS)
  redis.call('PEXPIRE', teams.expired, SERIES_KEEP_MS)
  redis.call('PEXPIRE', teams.expired_fields, SERIES_KEEP_MS)
  return gone
end
