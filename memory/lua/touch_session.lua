--- @include "fail"
-- Every write to a session (create, join, leave, share) refreshes the SESSION TTL on
-- all its keys, so a session lives while it is used; delete ends it for everyone.
-- Creating sets the purpose and the team (none when ''); an existing session keeps both.
local ttl = tonumber(ttl_ms)
if op == 'delete' then
  local n = redis.call('DEL', meta, agents, context)
  elsewhere('ZREM', sessions, session_id)
  if n > 0 then emit('session.deleted', 'session_id', session_id) end
  return n
end
if op == 'create' then
  if redis.call('HSETNX', meta, 'purpose', value) == 1 then
    redis.call('HSET', meta, 'created_at', now, 'created_by', actor)
    if team ~= '' then redis.call('HSET', meta, 'team', team) end
    emit('session.created', 'session_id', session_id)
  end
elseif redis.call('EXISTS', meta) == 0 then
  return fail('NOTFOUND', 'no session ' .. session_id .. ' (never created, expired or deleted)')
elseif op == 'join' then
  if redis.call('HSET', agents, name, now) == 1 then
    emit('session.joined', 'session_id', session_id, 'agent', name)
  end
elseif op == 'leave' then
  if redis.call('HDEL', agents, name) == 1 then
    emit('session.left', 'session_id', session_id, 'agent', name)
  end
elseif op == 'share' then
  redis.call('HSET', context, name, value)
  emit('session.shared', 'session_id', session_id, 'key', name)
end
redis.call('PEXPIRE', meta, ttl)
redis.call('PEXPIRE', agents, ttl)
redis.call('PEXPIRE', context, ttl)
elsewhere('ZREMRANGEBYSCORE', sessions, '-inf', now)
elsewhere('ZADD', sessions, now + ttl, session_id)
return 1
