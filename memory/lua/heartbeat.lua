--- @include "fail"
if redis.call('HEXISTS', agents, agent) == 0 then
  return fail('NOTFOUND', 'agent ' .. agent .. ' is not registered in team ' .. team)
end
redis.call('ZADD', heartbeats, now, agent)
emit('agent.heartbeat', 'team', team, 'agent', agent)
return now
