-- Register (or re-register) an agent in a team; 1 when it is new.
local fresh = redis.call('HSET', agents, agent, info_json)
redis.call('ZADD', heartbeats, now, agent)
elsewhere('ZADD', teams, now, team)
elsewhere('SADD', agent_teams, team)
emit('agent.registered', 'team', team, 'agent', agent)
return fresh
