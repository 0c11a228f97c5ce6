-- Only delivered bytes are billed as received (issue 18): each pass caps a container's received
-- bytes by what the host side of its veth pair transmitted into it since the last pass. ``veth``
-- names the interface the value belongs to ('<boot id>/<ifindex>'; NULL: the container had none,
-- i.e. it was stopped), ``veth_tx_seen`` is its tx_bytes then.
ALTER TABLE traffic_counters ADD COLUMN veth TEXT;
ALTER TABLE traffic_counters ADD COLUMN veth_tx_seen INTEGER;
