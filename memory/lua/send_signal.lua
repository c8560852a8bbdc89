--- @include "signal_delivery"
-- A signal to one agent, in its mailbox (the record and the inbox entry); the recent
-- feed, elsewhere, lists it with the mailbox's agent. A retried call (same token) finds
-- the record and returns it without a second copy.
local existing, id, body = new_signal(signal, token, record_json)
if existing then return existing end
local ttl = tonumber(ttl_ms)
deliver(signal, signal_inbox, body, signal_member(id, signal_type), ttl)
elsewhere_run(feed, 'feed_signal_@',
              {signals_recent, signals_rate, signals_team_rate, signals_team_minutes,
               signals_team_totals},
              {id .. '|' .. target, ttl, team})
emit('signal.sent', 'signal_id', id, 'signal_type', signal_type, 'target', target,
     'team', team)
return body
