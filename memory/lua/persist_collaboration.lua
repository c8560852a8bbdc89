-- The state has no TTL: it outlives sessions.
redis.call('SET', collaboration, state_json)
emit('collaboration.persisted', 'agent', actor)
return 1
