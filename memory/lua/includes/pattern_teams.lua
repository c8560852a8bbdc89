--- @include "pattern_member"
--- @include "per_minute"
--- @include "series"
-- Staged patterns by team: the formats' Lua half (their Python half, with what each
-- part means, is memory/formats.py: team_member, team_entry, expired_entry; team_minute
-- is in per_minute), and the per-team orderings kept in step with the index.
local CONFIDENCE_KEY_DIGITS = 16

local function team_entry(team, confidence_key, staged_ms)
  return team .. '\0' .. confidence_key .. string.format('%013d', staged_ms)
end

local function entry_team(entry)
  return string.sub(entry, 1, string.find(entry, '\0', 1, true) - 1)
end

-- A pattern's members of the orderings by expiry, confidence and staging time, from its
-- entry and its index member.
local function team_members(entry, member)
  local cut = string.find(entry, '\0', 1, true)
  local team = string.sub(entry, 1, cut)
  return team .. member,
         team .. string.sub(entry, cut + 1, cut + CONFIDENCE_KEY_DIGITS) .. member,
         team .. string.sub(entry, cut + CONFIDENCE_KEY_DIGITS + 1) .. member
end

local function expired_entry(member, team)
  return member .. '\0' .. team
end

-- The keys of one shard's per-team orderings, its entries by id, its series of
-- expired patterns by team with those series' fields by when they leave, and its
-- all-time totals by team, as one table for the functions below.
local function team_index(by_expiry, by_confidence, by_staged_at, of, expired,
                          expired_fields, totals)
  return {by_expiry = by_expiry, by_confidence = by_confidence, by_staged_at = by_staged_at,
          of = of, expired = expired, expired_fields = expired_fields, totals = totals}
end

local function team_add(t, pattern_id, entry, member)
  local by_expiry, by_confidence, by_staged_at = team_members(entry, member)
  redis.call('ZADD', t.by_expiry, 0, by_expiry)
  redis.call('ZADD', t.by_confidence, 0, by_confidence)
  redis.call('ZADD', t.by_staged_at, 0, by_staged_at)
  redis.call('HSET', t.of, pattern_id, entry)
end

-- Takes a pattern out of its team's orderings; returns its entry (nil when it had none).
local function team_remove(t, pattern_id, member)
  local entry = redis.call('HGET', t.of, pattern_id)
  if not entry then return nil end
  local by_expiry, by_confidence, by_staged_at = team_members(entry, member)
  redis.call('ZREM', t.by_expiry, by_expiry)
  redis.call('ZREM', t.by_confidence, by_confidence)
  redis.call('ZREM', t.by_staged_at, by_staged_at)
  redis.call('HDEL', t.of, pattern_id)
  return entry
end

-- team_remove for many index members at once; returns the team of each ('' when
-- org-wide, or when it had no entry).
local function team_remove_all(t, members)
  local teams = {}
  for i = 1, #members, 500 do
    local ids, gone = {}, {{}, {}, {}}
    for j = i, math.min(i + 499, #members) do ids[#ids + 1] = member_id(members[j]) end
    local entries = redis.call('HMGET', t.of, unpack(ids))
    for j, entry in ipairs(entries) do
      teams[#teams + 1] = entry and entry_team(entry) or ''
      if entry then
        local e, c, s = team_members(entry, members[i + j - 1])
        table.insert(gone[1], e)
        table.insert(gone[2], c)
        table.insert(gone[3], s)
      end
    end
    if #gone[1] > 0 then
      redis.call('ZREM', t.by_expiry, unpack(gone[1]))
      redis.call('ZREM', t.by_confidence, unpack(gone[2]))
      redis.call('ZREM', t.by_staged_at, unpack(gone[3]))
    end
    redis.call('HDEL', t.of, unpack(ids))
  end
  return teams
end

-- Counts expired members per team and minute of their expiry (`teams`: the team of
-- each), in the series of expired patterns (prefix team_series(team), series.lua) and in
-- each team's all-time total.
local function count_team_minutes(t, members, teams)
  local counts, minutes, of = {}, {}, {}
  for i, member in ipairs(members) do
    local minute = math.floor(member_expiry(member) / 60000)
    local field = team_minute(teams[i], minute)
    counts[field], minutes[field], of[field] = (counts[field] or 0) + 1, minute, teams[i]
  end
  local per_team = {}
  for field, n in pairs(counts) do
    count_series(t.expired, t.expired_fields, team_series(of[field]), minutes[field], n)
    per_team[of[field]] = (per_team[of[field]] or 0) + n
  end
  for team, n in pairs(per_team) do
    redis.call('HINCRBY', t.totals, team_total(team, 'patterns_expired'), n)
  end
end
