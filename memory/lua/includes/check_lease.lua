--- @include "task_state"
--- @include "fail"
-- Finishing a claim (complete, fail, extend): the caller must hold the current token
-- and the lease must not have run out, by the server's clock. Returns the task's state,
-- or an error reply to return.
local function check_lease(state, leases, task_id, token, team)
  local s = get_state(state, task_id)
  if not s then return nil, fail('NOTFOUND', 'no task ' .. task_id .. ' in team ' .. team) end
  if s.status ~= 'claimed' then
    return nil, fail('LEASE', 'task ' .. task_id .. ' is ' .. s.status .. ', not claimed')
  end
  if s.token ~= token then
    return nil, fail('LEASE', 'task ' .. task_id .. ' is now held by ' .. s.holder
                     .. ' with token ' .. s.token .. '; token ' .. token .. ' is stale')
  end
  local deadline = tonumber(redis.call('ZSCORE', leases, task_id) or 0)
  if deadline < now then
    return nil, fail('LEASE', 'the lease on task ' .. task_id .. ' ran out '
                     .. (now - deadline) .. ' ms ago')
  end
  return s
end
