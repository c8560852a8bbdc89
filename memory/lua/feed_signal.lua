--- @include "signal_delivery"
-- A signal to one agent in the recent feed, from send_signal under Cluster.
feed(signals_recent, signals_rate, signals_team_rate, signals_team_minutes,
     signals_team_totals, entry, tonumber(ttl_ms), team)
return 1
