-- A member of the staged-pattern index: "<expiry in ms, 13 digits>|<pattern id>", all
-- with score 0, so lexicographic order is expiry order. The Python side of this format
-- is memory/formats.py (pattern_member, parse_pattern_member).
local function pattern_member(expires_ms, pattern_id)
  return string.format('%013d', expires_ms) .. '|' .. pattern_id
end

local function member_expiry(member)
  return tonumber(string.sub(member, 1, 13))
end

-- The lexicographic bound of members expiring before ms: '(' excludes the bound itself.
local function member_bound(ms)
  return '(' .. string.format('%013d', ms)
end

local function member_id(member)
  return string.sub(member, 15)
end
