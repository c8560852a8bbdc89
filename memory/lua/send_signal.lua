--- @include "per_minute"
--- @include "signal_member"
-- Store a signal and deliver it to each index of `delivery` (one inbox, the broadcast
-- index, or a session's participants' inboxes plus its log). A retried call (same
-- token) finds the record and returns it without a second copy.
local existing = redis.call('GET', signal)
if existing then return existing end
local ttl = tonumber(ttl_ms)
local cutoff = '(' .. signal_start(now - ttl)
local seq = redis.call('INCR', signals_seq)
local id = signal_id(now, seq, token)
local body = '{"id":"' .. id .. '","timestamp":' .. string.format('%.3f', now / 1000)
             .. ',' .. string.sub(record_json, 2)
redis.call('SET', signal, body, 'PX', ttl)
redis.call('ZREMRANGEBYLEX', signals_recent, '-', cutoff)
redis.call('ZADD', signals_recent, 0, id)
count_per_minute(signals_rate, math.floor(now / 60000), 1, RECENT_MINUTES)
for _, index in ipairs(delivery) do
  redis.call('ZREMRANGEBYLEX', index, '-', cutoff)
  redis.call('ZADD', index, 0, signal_member(id, signal_type))
  redis.call('PEXPIRE', index, ttl)
end
emit('signal.sent', 'signal_id', id, 'signal_type', signal_type, 'target', target,
     'team', team)
return body
