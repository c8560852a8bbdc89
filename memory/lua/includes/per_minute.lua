-- Per-minute counters: a hash of <minutes since the epoch> -> count. Only a minute's
-- first change (or a return to zero) can need old minutes trimmed, so only then is the
-- size checked; past keep + 30 fields, the minutes more than `keep` before this one go.
local function count_per_minute(hash, minute, delta, keep)
  if redis.call('HINCRBY', hash, minute, delta) == delta
      and redis.call('HLEN', hash) > keep + 30 then
    for _, field in ipairs(redis.call('HKEYS', hash)) do
      if tonumber(field) < minute - keep then redis.call('HDEL', hash, field) end
    end
  end
end

-- A per-minute counter by team: the field "<team>\0<minute>" ('' the org-wide team);
-- the Python half is memory/formats.py (team_minute, parse_team_minute).
local function team_minute(team, minute)
  return team .. '\0' .. string.format('%d', minute)
end

-- The dashboard's recent series (signals sent, queue depth) keep two hours.
local RECENT_MINUTES = 120
