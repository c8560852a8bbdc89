--- @include "fence"
-- Task timings (memory/timings.py): how long tasks took from claim to completion, in
-- log-scaled buckets, by task type and by agent. The Python half of the format, with
-- what each field means, is memory/formats.py (timing_bucket, parse_timing_field): two
-- rings of slots, "m" (five minutes each, 14 of them) and "h" (an hour each, 26), whose
-- fields are "<ring><index>:at", ":max", ":failed" and ":<bucket>".
local TIMING_STEPS = 8
local TIMING_TOP = 225
local TIMING_FINE_MS, TIMING_FINE_SLOTS = 300000, 14
local TIMING_HOUR_MS, TIMING_HOUR_SLOTS = 3600000, 26
-- A timings hash leaves this long after its last slot began, so one nobody writes goes.
local TIMING_KEEP_MS = (TIMING_HOUR_SLOTS + 1) * TIMING_HOUR_MS
-- log(2), as a literal: `math` is not there while the library loads.
local LOG_2 = 0.6931471805599453

local function timing_bucket(ms)
  if ms < 1 then return 0 end
  return math.min(TIMING_TOP, 1 + math.floor(math.log(ms) / LOG_2 * TIMING_STEPS))
end

-- A slot that held an earlier number is emptied (every name it can hold: a bounded
-- number) before it holds `number`.
local function timing_reset(hash, slot, number)
  local names = {slot .. 'max', slot .. 'failed'}
  for bucket = 0, TIMING_TOP do names[#names + 1] = slot .. bucket end
  redis.call('HDEL', hash, unpack(names))
  redis.call('HSET', hash, slot .. 'at', number)
  redis.call('PEXPIRE', hash, TIMING_KEEP_MS)
end

-- One hash's share of record_timings: the current slot of each ring, numbered `fine` and
-- `hour`, with fields prefixed `f` and `h`; returns whether it began the fine one.
local function record_in(hash, ms, fine, hour, f, h, counted)
  local held = redis.call('HMGET', hash, f .. 'at', h .. 'at', f .. 'max', h .. 'max')
  local began = tonumber(held[1]) ~= fine
  if began then timing_reset(hash, f, fine); held[3] = false end
  if tonumber(held[2]) ~= hour then timing_reset(hash, h, hour); held[4] = false end
  redis.call('HINCRBY', hash, f .. counted, 1)
  redis.call('HINCRBY', hash, h .. counted, 1)
  if ms then
    if not held[3] or ms > tonumber(held[3]) then redis.call('HSET', hash, f .. 'max', ms) end
    if not held[4] or ms > tonumber(held[4]) then redis.call('HSET', hash, h .. 'max', ms) end
  end
  return began
end

-- record_timings(ms, agent_hash, type_hash): a task that took `ms` (nil: a failure) in
-- its holder's hash and (if given) its type's, in the current slot of each ring. Returns
-- whether it began the holder's current five minutes' slot.
local function record_timings(ms, agent_hash, type_hash)
  local fine, hour = math.floor(now / TIMING_FINE_MS), math.floor(now / TIMING_HOUR_MS)
  local f = 'm' .. (fine % TIMING_FINE_SLOTS) .. ':'
  local h = 'h' .. (hour % TIMING_HOUR_SLOTS) .. ':'
  local counted = ms and timing_bucket(ms) or 'failed'
  if type_hash then record_in(type_hash, ms, fine, hour, f, h, counted) end
  return record_in(agent_hash, ms, fine, hour, f, h, counted)
end

-- note_agent(index, agent): `agent` completed or failed a task (`index`: the team's
-- agents with timings, by when they last began a five minutes' slot: so once per slot).
-- A new one takes those not seen for as long as their timings are kept out with it.
local function note_agent(index, agent)
  if redis.call('ZADD', index, now, agent) == 1 then
    redis.call('ZREMRANGEBYSCORE', index, '-inf', now - TIMING_KEEP_MS)
  end
end

-- How long the claim of fencing token `token` has been held, in ms (claim_time in
-- fence.lua).
local function held_for(token)
  return math.max(0, now - claim_time(token))
end
