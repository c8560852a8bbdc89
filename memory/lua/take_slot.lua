-- A pool of at most `cap` slots per agent (a person's open dashboards, say), each held
-- until its deadline unless taken again first, which renews it. Holders that vanish
-- without releasing their slot free it when its deadline passes.
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
if not redis.call('ZSCORE', slots, slot) and redis.call('ZCARD', slots) >= tonumber(cap) then
  return 0
end
local ttl = tonumber(ttl_ms)
redis.call('ZADD', slots, now + ttl, slot)
redis.call('PEXPIRE', slots, ttl)
return 1
