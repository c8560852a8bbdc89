--- @include "signal_delivery"
-- A signal to one agent in the recent feed, from send_signal under Cluster.
feed(signals_recent, signals_rate, entry, tonumber(ttl_ms))
return 1
