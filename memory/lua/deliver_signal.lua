--- @include "signal_delivery"
-- A session's signal to one participant, from session_signal under Cluster.
deliver(signal, signal_inbox, body, member, tonumber(ttl_ms))
return 1
