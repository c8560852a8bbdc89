--- @include "signal_delivery"
-- A signal to every agent (see send_shared).
return send_shared(signal,
                   {signals_recent, signals_rate, signals_team_rate, signals_team_minutes,
                    signals_team_totals},
                   signals_broadcast, {}, token, record_json, signal_type, ttl_ms, '*', team)
