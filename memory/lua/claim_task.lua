--- @include "task_state"
--- @include "per_minute"
--- @include "reap"
--- @include "fence"
--- @include "task_counts"
-- Claim the first task of the queue, after reaping this type's expired leases. The
-- lease carries a fencing token (fence.lua). Idempotent by request: claim_request
-- remembers what this request claimed, for as long as the lease, so a request sent
-- again gets the same claim back while it is held instead of a second one.
local prior = redis.call('GET', claim_request)
if prior then
  local id, token = string.match(prior, '^([^\t]*)\t(.*)$')
  local status, attempts, holder, held = decode_state(redis.call('HGET', state, id))
  if status == 'claimed' and held == token and holder == agent then
    return {redis.call('HGET', spec, id), token, redis.call('ZSCORE', leases, id), attempts}
  end
end
reap(state, queue, leases, dead, queue_changes, waiting, series, series_leaving, totals,
     task_type, max_attempts, team, batch)
local id = redis.call('ZPOPMIN', queue)[1]
if not id then return nil end
redis.call('ZREM', waiting, id)
local _, attempts, _, _, score, of_type = decode_state(redis.call('HGET', state, id))
attempts = attempts + 1
local fencing_token = next_token(fence)
redis.call('HSET', state, id,
           encode_state('claimed', attempts, agent, fencing_token, score, of_type))
local deadline = now + tonumber(lease_ms)
redis.call('ZADD', leases, deadline, id)
redis.call('SET', claim_request, id .. '\t' .. fencing_token, 'PX', lease_ms)
count_per_minute(queue_changes, math.floor(now / 60000), -1, RECENT_MINUTES)
count_task(series, series_leaving, totals, 'tasks_claimed', task_type, 1)
emit('task.claimed', 'team', team, 'task_id', id, 'task_type', task_type, 'agent', agent,
     'token', fencing_token, 'attempts', attempts)
return {redis.call('HGET', spec, id), fencing_token, deadline, attempts}
