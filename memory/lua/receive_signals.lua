--- @include "signal_member"
-- Consume what waits for one agent: its inbox, and the broadcasts after its cursor. An
-- unfiltered receive takes every broadcast after the cursor and moves the cursor, so
-- its cost follows what is new; a filtered one cannot move it, and marks what it took
-- in signal_seen.
local ttl = tonumber(ttl_ms)
local oldest = signal_start(now - ttl)
local out = {}
local function matches(member)
  return type_filter == '' or member_type(member) == type_filter
end
for _, index in ipairs({signal_inbox, signals_broadcast, signal_seen}) do
  redis.call('ZREMRANGEBYLEX', index, '-', '(' .. oldest)
end
for _, member in ipairs(redis.call('ZRANGE', signal_inbox, 0, -1)) do
  if matches(member) then
    table.insert(out, member)
    redis.call('ZREM', signal_inbox, member)
  end
end
local cursor = redis.call('GET', signal_cursor)
if not cursor or cursor < oldest then cursor = oldest end
local last = nil
for _, member in ipairs(redis.call('ZRANGE', signals_broadcast, '(' .. cursor, '+', 'BYLEX')) do
  if not redis.call('ZSCORE', signal_seen, member) and matches(member) then
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
