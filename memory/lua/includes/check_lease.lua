--- @include "task_state"
--- @include "fail"
-- Finishing a claim (complete, fail, extend): the caller must hold the current token,
-- be the holder (agent; '' when the caller only knows the token, which is unique), and
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
  if held ~= token or (agent ~= '' and holder ~= agent) then
    return fail('LEASE', 'task ' .. task_id .. ' is now held by ' .. holder
                .. ' with token ' .. held .. '; token ' .. token .. ' is stale')
  end
  local deadline = tonumber(redis.call('ZSCORE', leases, task_id) or 0)
  if deadline < now then
    return fail('LEASE', 'the lease on task ' .. task_id .. ' ran out '
                .. (now - deadline) .. ' ms ago')
  end
  return nil, attempts, holder, score, task_type
end
