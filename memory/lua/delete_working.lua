local n = redis.call('DEL', working)
redis.call('ZREM', working_index, key)
if n > 0 then emit('working.deleted', 'agent', agent, 'key', key) end
return n
