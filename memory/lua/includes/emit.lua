-- emit(kind, field, value, ...): append this change's event to the stream, in the same
-- call as the change, so an event exists exactly when its change does. Returns the
-- entry id, which starts with the server's time in ms. The format is memory/events.py's.
-- The stream, its length, the actor and the tier are the library's locals that every
-- function sets first.
local function emit(kind, ...)
  return redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*',
                    'actor', actor, 'tier', tier, 'type', kind, ...)
end
