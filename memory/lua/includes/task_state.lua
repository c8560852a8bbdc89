-- A task's state, one field per task in its team's state hash: status, attempts,
-- holder, token, score and type, joined by tabs (ids hold no control characters).
-- The Python side of this format is memory/formats.py (TaskState).
local function decode_state(raw)
  if not raw then return nil end
  local status, attempts, holder, token, score, task_type =
    string.match(raw, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
  return {status=status, attempts=tonumber(attempts), holder=holder, token=token,
          score=score, type=task_type}
end

local function encode_state(s)
  return s.status .. '\t' .. s.attempts .. '\t' .. s.holder .. '\t' .. s.token .. '\t'
         .. s.score .. '\t' .. s.type
end

local function get_state(states, id)
  return decode_state(redis.call('HGET', states, id))
end

local function put_state(states, id, s)
  redis.call('HSET', states, id, encode_state(s))
end
