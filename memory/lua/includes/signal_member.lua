-- Signals: an id is "<server ms, 13 digits>-<sequence, 12 digits>-<sender's token>",
-- where the sequence is the microseconds within that ms, so ids sort in the order
-- signals were sent (signals sent in one microsecond, by different senders, in the
-- order of their tokens). Inboxes, the broadcast index and session logs hold
-- "<id>|<signal type>"; the recent feed holds "<id>" for a signal whose record is with
-- the shared signals and "<id>|<agent>" for one whose record is in that agent's
-- mailbox. The Python half of this format is memory/formats.py.
local function signal_id(ms, micros, token)
  return string.format('%013d-%012d-', ms, micros) .. token
end

-- The server's time for a new signal's id: ms, and the microseconds within it.
local function signal_time()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), tonumber(t[2]) % 1000
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

-- The time (ms) a signal id or index member was sent at.
local function sent_at(member)
  return tonumber(string.sub(member, 1, 13))
end

-- new_signal(record, token, record_json): the stored record when the signal of this
-- token exists (a retried send); else nil, the new signal's id, and its record in the
-- format of memory/signals.py (its id and time, then the rest of record_json).
local function new_signal(record, token, record_json)
  local existing = redis.call('GET', record)
  if existing then return existing end
  local ms, micros = signal_time()
  local id = signal_id(ms, micros, token)
  return nil, id, '{"id":"' .. id .. '","timestamp":' .. string.format('%.3f', ms / 1000)
                  .. ',' .. string.sub(record_json, 2)
end
