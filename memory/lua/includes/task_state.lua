-- A task's state, one field per task in its team's state hash: status, attempts,
-- holder, token, score and type, joined by tabs (ids hold no control characters).
-- The Python side of this format is memory/formats.py (TaskState). The fields travel
-- as six values, not a table: a table per call is garbage on the hottest script.
local function decode_state(raw)
  if not raw then return nil end
  local status, attempts, holder, token, score, task_type =
    string.match(raw, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
  return status, tonumber(attempts), holder, token, score, task_type
end

local function encode_state(status, attempts, holder, token, score, task_type)
  return status .. '\t' .. attempts .. '\t' .. holder .. '\t' .. token .. '\t' .. score
         .. '\t' .. task_type
end
