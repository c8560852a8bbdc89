-- One team's figures for overviews (memory/summaries.py), read in its hash slot:
-- for each task type (`queues`: its queue, leases and waiting keys, in threes), how
-- many are pending, how many claimed, and the score of the oldest pending (false: none);
-- then how many completed after `cutoff` and how many are dead; then, for each pair of
-- `ranges` (a JSON list of [low, high]), how many heartbeats fall in it.
local reply = {}
for i = 1, #queues, 3 do
  local oldest = redis.call('ZRANGE', queues[i + 2], 0, 0, 'WITHSCORES')
  reply[#reply + 1] = redis.call('ZCARD', queues[i])
  reply[#reply + 1] = redis.call('ZCARD', queues[i + 1])
  reply[#reply + 1] = oldest[2] or false
end
reply[#reply + 1] = redis.call('ZCOUNT', completed, '(' .. cutoff, '+inf')
reply[#reply + 1] = redis.call('ZCARD', dead)
for _, range in ipairs(cjson.decode(ranges)) do
  reply[#reply + 1] = redis.call('ZCOUNT', heartbeats, range[1], range[2])
end
return reply
