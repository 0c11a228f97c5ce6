-- A rule may forward a range of host ports (host_port..host_port_end) to the same-size range of
-- container ports starting at container_port. Single-port rules have host_port_end = host_port.
ALTER TABLE nat_rules ADD COLUMN host_port_end INTEGER;
UPDATE nat_rules SET host_port_end = host_port;
CREATE INDEX nat_rules_by_port ON nat_rules (protocol, host_port, host_port_end);
