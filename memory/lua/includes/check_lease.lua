--- @include "task_state"
--- @include "fail"
-- Finishing a claim (complete, fail, extend): the caller (agent) must be the holder and
-- present the current token (observers can see tokens: one alone is not enough), and
-- the lease must not have run out, by the server's clock. Returns an error reply to
-- return, or nil and the task's state.
local function check_lease(state, leases, task_id, token, agent, team)
  local status, attempts, holder, held, score, task_type =
    decode_state(redis.call('HGET', state, task_id))
  if not status then
    return fail('NOTFOUND', 'no task ' .. task_id .. ' in team ' .. team)
  end
  if status ~= 'claimed' then
    return fail('LEASE', 'task ' .. task_id .. ' is ' .. status .. ', not claimed')
  end
  if held ~= token or holder ~= agent then
    return fail('LEASE', 'task ' .. task_id .. ' is held by ' .. holder .. ' with another '
                .. 'token; ' .. agent .. ' with token ' .. token .. ' may not finish it')
  end
  local deadline = tonumber(redis.call('ZSCORE', leases, task_id) or 0)
  if deadline < now then
    return fail('LEASE', 'the lease on task ' .. task_id .. ' ran out '
                .. (now - deadline) .. ' ms ago')
  end
  return nil, attempts, holder, score, task_type
end
