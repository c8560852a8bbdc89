-- A leading bridge that stops hands the lead on at once (nothing if it no longer leads).
if redis.call('HGET', bridge_lead, 'token') == token then redis.call('DEL', bridge_lead) end
return 1
