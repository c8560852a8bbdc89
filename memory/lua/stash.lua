-- The index is a sorted set of the agent's keys scored by expiry time, so listing
-- skips expired keys by score, and a stash that adds a key trims what has expired.
-- The event goes first: its id starts with the server's time in ms, which saves a TIME
-- call on the busiest write (under Cluster there is no id yet).
local event_id = emit('working.stashed', 'key', key)
local at = event_id and tonumber(string.match(event_id, '^%d+')) or clock()
local ttl = tonumber(ttl_ms)
redis.call('SET', working, value_json, 'PX', ttl)
if redis.call('ZADD', working_index, at + ttl, key) == 1 then
  -- Only a new key can grow the index, so that is when expired members are trimmed.
  redis.call('ZREMRANGEBYSCORE', working_index, '-inf', at)
end
-- The index (and the agent's entry in the agents index) must outlive every key in it.
-- Extending them with a tenth to spare means a burst of stashes extends them once, and
-- that (once per TTL window per agent) is when the agents whose memory has expired
-- since leave the agents index.
if redis.call('PTTL', working_index) < ttl then
  local spare = ttl + math.floor(ttl / 10)
  redis.call('PEXPIRE', working_index, spare)
  elsewhere('ZADD', working_agents, 'GT', at + spare, actor)
  elsewhere('ZREMRANGEBYSCORE', working_agents, '-inf', at)
end
return 1
