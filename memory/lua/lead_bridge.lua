--- @include "fence"
-- One of the running bridges leads. `holder` takes the lead when nobody holds it, with a
-- new fencing token, or renews it when it holds it already; either way the lead lasts
-- `ttl_ms` more. Returns the holder's token, or '' while another bridge leads.
local current = redis.call('HGET', bridge_lead, 'holder')
if current and current ~= holder then return '' end
local token = redis.call('HGET', bridge_lead, 'token')
if not current then
  token = next_token(bridge_fence)
  redis.call('HSET', bridge_lead, 'holder', holder, 'token', token)
end
redis.call('PEXPIRE', bridge_lead, ttl_ms)
return token
