-- Fencing tokens, per team, strictly increasing even when Redis loses its last writes
-- (a failover to a replica that missed them, an OS crash under appendfsync everysec).
-- A token is at least the server's clock in ms times 1000, and at least one more than
-- the last one issued. A token lost with the writes after it was issued under an
-- earlier clock, so every token issued after the loss is larger, as long as the clock
-- of the server that takes over has moved past it. Tokens are decimal strings: Lua
-- would write numbers this large in exponent form.
local function next_token(fence)
  local last = tonumber(redis.call('GET', fence) or '0')
  local token = string.format('%.0f', math.max(last + 1, now * 1000))
  redis.call('SET', fence, token)
  return token
end

-- The server's clock (ms) when `token` was issued: its ms part. A token issued right
-- after a clock stepped back (a failover) carries a later time; held_for (timings.lua)
-- counts that as no time at all rather than less than none.
local function claim_time(token)
  return math.floor(tonumber(token) / 1000)
end
