-- Series of counts by minute and by hour (memory/series.py). In a series hash, the
-- field "<prefix><minute>" counts what happened in that minute since the epoch, and
-- "<prefix>h<hour>" in that hour; the prefix names the series (the Python half of the
-- format, with each prefix, is memory/formats.py: own_series, team_series, minute_field,
-- hour_field). Minutes are kept SERIES_MINUTES (7 days), hours SERIES_HOURS (90 days).
--
-- `leaving` holds every field, scored so that it leaves once its score is more than
-- SERIES_MINUTES before the minute being counted: a minute field by its minute (as the
-- per-team counts of signals and of expired patterns always were), an hour field by the
-- minute its hour starts plus SERIES_HOUR_SHIFT. Each new minute field takes up to
-- SERIES_TRIM of the members due out, so no write scans the hash, and since fields
-- leave as they came, old ones go at least as fast as new ones come. In a team's own
-- series (`kinds`: the kinds it counts, each with the prefix "<kind>\0"), `leaving`
-- holds buckets instead ("<minute>", "h<hour>"), each standing for that bucket's field
-- of every kind: one member a bucket rather than one a kind and bucket. A team's own
-- series also counts by 5 minutes ("<prefix>f<5-minute>", kept as its first minute is,
-- and left by "f<5-minute>"), which a day's chart reads: 288 fields rather than 1,440.
local SERIES_MINUTES = 10080
local SERIES_HOURS = 2160
local SERIES_TRIM = 100
local SERIES_HOUR_SHIFT = SERIES_HOURS * 60 - SERIES_MINUTES
-- How long a series hash that expires when quiet is kept after its last write.
local SERIES_KEEP_MS = (SERIES_HOURS + 1) * 3600000

-- A bucket's part of a field's name: its `mark` ('' a minute, 'f' 5 minutes, 'h' an
-- hour) and its number since the epoch.
local function series_bucket(bucket, mark)
  return mark .. string.format('%d', bucket)
end

-- count_series(counts, leaving, prefix, minute, n, kinds): n more in `minute` and its
-- hour (`kinds`: see above; nil in a hash teams share).
local function count_series(counts, leaving, prefix, minute, n, kinds)
  local hour = math.floor(minute / 60)
  local hour_bucket = series_bucket(hour, 'h')
  if kinds then
    local five = math.floor(minute / 5)
    local five_bucket = series_bucket(five, 'f')
    if redis.call('HINCRBY', counts, prefix .. five_bucket, n) == n then
      redis.call('ZADD', leaving, five * 5, five_bucket)
    end
  end
  if redis.call('HINCRBY', counts, prefix .. hour_bucket, n) == n then
    redis.call('ZADD', leaving, hour * 60 + SERIES_HOUR_SHIFT,
               kinds and hour_bucket or prefix .. hour_bucket)
  end
  local bucket = series_bucket(minute, '')
  if redis.call('HINCRBY', counts, prefix .. bucket, n) ~= n then return end
  redis.call('ZADD', leaving, minute, kinds and bucket or prefix .. bucket)
  local due = redis.call('ZRANGEBYSCORE', leaving, '-inf', '(' .. (minute - SERIES_MINUTES),
                         'LIMIT', 0, SERIES_TRIM)
  if #due == 0 then return end
  local fields = due
  if kinds then
    fields = {}
    for _, gone in ipairs(due) do
      for _, kind in ipairs(kinds) do fields[#fields + 1] = kind .. '\0' .. gone end
    end
  end
  redis.call('HDEL', counts, unpack(fields))
  redis.call('ZREM', leaving, unpack(due))
end

-- The prefix of a team's series in a hash teams share ('' the org-wide team), with
-- `kind` when the hash holds several; and the field of its all-time total of `kind`.
local function team_series(team, kind)
  if kind then return team .. '\0' .. kind .. '\0' end
  return team .. '\0'
end

local function team_total(team, kind)
  return team .. '\0' .. kind
end
