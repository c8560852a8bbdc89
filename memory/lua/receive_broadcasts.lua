--- @include "signal_member"
-- Consume the broadcasts one agent has not had. An unfiltered receive takes every
-- broadcast after the agent's cursor and moves the cursor, so its cost follows what is
-- new; a filtered one cannot move it, and marks what it took in signal_seen. Sending
-- trims the broadcast index, and a broadcast whose record has expired is not read
-- (memory/signals.py), so a receive that finds nothing new reads two keys and writes
-- none.
local ttl = tonumber(ttl_ms)
local out = {}
local cursor = redis.call('GET', signal_cursor) or '-'
local after = cursor == '-' and '-' or '(' .. cursor
local last = nil
for _, member in ipairs(redis.call('ZRANGE', signals_broadcast, after, '+', 'BYLEX')) do
  if (type_filter == '' or member_type(member) == type_filter)
      and not redis.call('ZSCORE', signal_seen, member) then
    table.insert(out, member)
    if type_filter ~= '' then redis.call('ZADD', signal_seen, 0, member) end
  end
  last = member
end
if type_filter == '' and last then
  redis.call('SET', signal_cursor, last, 'PX', ttl)
  redis.call('ZREMRANGEBYLEX', signal_seen, '-', '[' .. last)
end
if #out > 0 then
  redis.call('PEXPIRE', signal_seen, ttl)
  emit('signal.received', 'agent', agent, 'count', #out)
end
return out
