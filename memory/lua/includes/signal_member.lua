-- Signals: an id is "<server ms, 13 digits>-<sequence, 12 digits>-<sender's token>", so
-- ids sort in the order signals were sent; inboxes and the broadcast index hold
-- "<id>|<signal type>". The Python half of this format is memory/formats.py.
local function signal_id(ms, seq, token)
  return string.format('%013d-%012d-', ms, seq % 1000000000000) .. token
end

local function signal_member(id, signal_type)
  return id .. '|' .. signal_type
end

local function member_type(member)
  return string.sub(member, string.find(member, '|', 1, true) + 1)
end

-- The lexicographic start of signals sent at or after ms.
local function signal_start(ms)
  return string.format('%013d', ms)
end
