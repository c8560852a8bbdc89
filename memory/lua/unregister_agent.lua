-- Unregister an agent from a team; 1 when it was registered. The agent's own index of
-- its teams loses the team either way (it may hold one left over).
local n = redis.call('HDEL', agents, agent)
redis.call('ZREM', heartbeats, agent)
elsewhere('SREM', agent_teams, team)
if n > 0 then emit('agent.unregistered', 'team', team, 'agent', agent) end
return n
