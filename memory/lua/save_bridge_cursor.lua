-- The leading bridge saves how far it has announced the event stream, under its token:
-- a bridge that lost the lead (paused past its lease, say) cannot move the cursor of
-- the one that took over. Returns 1 if saved, 0 if `token` no longer leads.
if redis.call('HGET', bridge_lead, 'token') ~= token then return 0 end
redis.call('SET', bridge_cursor, event_id)
return 1
