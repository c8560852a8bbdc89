--- @include "signal_member"
-- Consume what waits in one agent's inbox (of `type_filter`, or all). The records are
-- in the same mailbox (memory/signals.py reads them). Delivery trims what has expired,
-- and the inbox expires with its newest signal; a record that expired is not read.
local out = {}
for _, member in ipairs(redis.call('ZRANGE', signal_inbox, 0, -1)) do
  if type_filter == '' or member_type(member) == type_filter then
    table.insert(out, member)
    redis.call('ZREM', signal_inbox, member)
  end
end
if #out > 0 then emit('signal.received', 'agent', agent, 'count', #out) end
return out
