local n = redis.call('HDEL', agents, agent)
redis.call('ZREM', heartbeats, agent)
if n > 0 then emit('agent.unregistered', 'team', team, 'agent', agent) end
return n
