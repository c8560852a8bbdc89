-- emit(kind, field, value, ...): append this change's event to the stream, in the same
-- call as the change, so an event exists exactly when its change does. Returns the
-- entry id, which starts with the server's time in ms. The format is memory/events.py's.
-- The stream, its length, the actor and the tier are the library's locals that every
-- function sets first.
--
-- elsewhere(command, key, ...): a write to a key outside the function's hash slot (a
-- cross-group index, declared `elsewhere` in memory/scripts.py).
--
-- Under Redis Cluster (`outbox` is set), both queue their writes in `outbox`, which the
-- connection sends in a second call: the event to a shard of the stream, with the
-- stream's name and length added there. emit then answers an id of the server's time.
local function emit(kind, ...)
  if outbox then
    outbox[#outbox + 1] = {'XADD', 'actor', actor, 'tier', tier, 'type', kind, ...}
    return clock() .. '-0'
  end
  return redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*',
                    'actor', actor, 'tier', tier, 'type', kind, ...)
end

local function elsewhere(...)
  if outbox then
    outbox[#outbox + 1] = {...}
    return
  end
  redis.call(...)
end
