--- @include "signal_member"
--- @include "per_minute"
--- @include "series"
-- Where a sent signal goes (memory/signals.py):
-- file(index, member, ttl): add a member to a signal index (an inbox, the broadcast index,
-- a session's log), dropping what has expired, and keep the index as long as a signal.
local function file(index, member, ttl)
  redis.call('ZREMRANGEBYLEX', index, '-', '(' .. signal_start(sent_at(member) - ttl))
  redis.call('ZADD', index, 0, member)
  redis.call('PEXPIRE', index, ttl)
end

-- deliver(record, inbox, body, member, ttl): a signal in one agent's mailbox: its
-- record, and its member in the inbox.
local function deliver(record, inbox, body, member, ttl)
  redis.call('SET', record, body, 'PX', ttl)
  file(inbox, member, ttl)
end

-- feed(recent, rate, team_rate, team_minutes, team_totals, entry, ttl, team): a signal
-- in the recent feed, counted in its minute, in all (`rate`, kept RECENT_MINUTES), and
-- for its team ('' when org-wide): in its series (`team_rate`, prefix team_series(team),
-- so its minute fields are "<team>\0<minute>", team_minute; `team_minutes` holds the
-- fields by when they leave) and in its all-time total (`team_totals`).
local function feed(recent, rate, team_rate, team_minutes, team_totals, entry, ttl, team)
  local ms = sent_at(entry)
  local minute = math.floor(ms / 60000)
  redis.call('ZREMRANGEBYLEX', recent, '-', '(' .. signal_start(ms - ttl))
  redis.call('ZADD', recent, 0, entry)
  count_per_minute(rate, minute, 1, RECENT_MINUTES)
  count_series(team_rate, team_minutes, team_series(team), minute, 1)
  redis.call('HINCRBY', team_totals, team_total(team, 'signals_sent'), 1)
end

-- send_shared(...): a broadcast, or a signal to a session: its record with the shared
-- signals, filed in `index` (the broadcast index, or the session's log) and in the
-- recent feed (`feeds`: feed's five keys); each of a session's participants gets a copy in its mailbox
-- (`mailboxes`: record and inbox keys, in pairs), which are elsewhere. A retried call
-- (same token) finds the record and returns it without a second copy.
local function send_shared(record, feeds, index, mailboxes, token, record_json,
                           signal_type, ttl_ms, target, team)
  local existing, id, body = new_signal(record, token, record_json)
  if existing then return existing end
  local ttl = tonumber(ttl_ms)
  local member = signal_member(id, signal_type)
  redis.call('SET', record, body, 'PX', ttl)
  file(index, member, ttl)
  feed(feeds[1], feeds[2], feeds[3], feeds[4], feeds[5], id, ttl, team)
  for i = 1, #mailboxes, 2 do
    elsewhere_run(deliver, 'deliver_signal_@', {mailboxes[i], mailboxes[i + 1]},
                  {body, member, ttl})
  end
  emit('signal.sent', 'signal_id', id, 'signal_type', signal_type, 'target', target,
       'team', team)
  return body
end
