-- A team's `finished` hash keeps, per task, who finished its last claim, with which
-- token and how: "<token>\t<holder>\t<outcome>". A completion or failure whose reply
-- was lost is sent again (a client's retry); finding itself here, with the same result
-- (or error) still in the task's result key, it answers what the first call answered
-- instead of refusing the caller's own committed work.
local function finished_before(finished, result, task_id, token, agent, payload)
  local record = redis.call('HGET', finished, task_id)
  if not record then return nil end
  local done_token, holder, outcome = string.match(record, '^([^\t]*)\t([^\t]*)\t(.*)$')
  if done_token == token and holder == agent
      and redis.call('GET', result) == payload then
    return outcome
  end
  return nil
end

local function record_finish(finished, task_id, token, holder, outcome)
  redis.call('HSET', finished, task_id, token .. '\t' .. holder .. '\t' .. outcome)
end
