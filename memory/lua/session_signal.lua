--- @include "signal_delivery"
-- A signal to a team session's participants (see send_shared).
return send_shared(signal,
                   {signals_recent, signals_rate, signals_team_rate, signals_team_minutes,
                    signals_team_totals},
                   session_signals, mailboxes, token, record_json, signal_type, ttl_ms, target,
                   team)
