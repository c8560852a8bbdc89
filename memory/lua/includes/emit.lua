-- emit(kind, field, value, ...): append this change's event to the stream, in the same
-- call as the change, so an event exists exactly when its change does. Returns the
-- entry id, which starts with the server's time in ms. The format is memory/events.py's.
-- The stream, its length, the actor and the tier are the library's locals that every
-- function sets first.
--
-- elsewhere(command, key, ...): a write to a key outside the function's hash slot (a
-- cross-group index, declared `elsewhere` in memory/scripts.py).
-- elsewhere_run(fn, function_name, keys, args): fn(keys..., args...), the Lua of one of
-- the library's functions (`function_name`, ending in _@), on keys elsewhere.
--
-- Under Redis Cluster (`outbox` is set), they queue their writes in `outbox`, which the
-- connection sends in a second call: the event to a shard of the stream, with the
-- stream's name and length added there; the function as an FCALL. emit then answers
-- nothing (there is no entry id yet).
local function emit(kind, ...)
  if outbox then
    outbox[#outbox + 1] = {'XADD', 'actor', actor, 'tier', tier, 'type', kind, ...}
    return nil
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

local function elsewhere_run(fn, function_name, keys, args)
  if outbox then
    local call = {'FCALL', function_name, #keys}
    for _, key in ipairs(keys) do call[#call + 1] = key end
    for _, value in ipairs({maxlen, actor, tier}) do call[#call + 1] = value end
    for _, value in ipairs(args) do call[#call + 1] = value end
    outbox[#outbox + 1] = call
    return
  end
  local values = {}
  for _, key in ipairs(keys) do values[#values + 1] = key end
  for _, value in ipairs(args) do values[#values + 1] = value end
  fn(unpack(values))
end
