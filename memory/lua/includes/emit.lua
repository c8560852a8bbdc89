-- emit(kind, field, value, ...): append this change's event to the stream, in the same
-- script as the change, so an event exists exactly when its change does. Returns the
-- entry id, which starts with the server's time in ms. The format is memory/events.py's.
-- It reads the stream, its length, the actor and the tier from KEYS[1] and ARGV[1..3]
-- (the locals events, maxlen, actor and tier): capturing those locals would allocate
-- four upvalues on every call of every script.
local function emit(kind, ...)
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
                    'actor', ARGV[2], 'tier', ARGV[3], 'type', kind, ...)
end
