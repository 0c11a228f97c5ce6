-- A sale's port block (ports=N, issue 19): the N consecutive host ports sold with the container,
-- recorded beside its rules in the sale's transaction. The block's ports are the container's
-- whether or not a rule forwards them now: its customer may delete a rule and point the port
-- elsewhere, and the pool never hands such a port to another sale. Bound to the instance (its
-- Incus volatile.uuid) as rules are: the service's delete drops it; a sync drops the block of an
-- instance that is gone (deleted outside the service, or made again under its name).
CREATE TABLE port_blocks (
    id             INTEGER PRIMARY KEY,
    container_name TEXT NOT NULL,
    instance_uuid  TEXT,
    first_port     INTEGER NOT NULL CHECK (first_port BETWEEN 1 AND 65535),
    last_port      INTEGER NOT NULL CHECK (last_port BETWEEN first_port AND 65535),
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX port_blocks_by_container ON port_blocks (container_name);
CREATE INDEX port_blocks_by_port ON port_blocks (first_port, last_port);

-- Containers sold before: their block is what the sale wrote, found in their rules. A sale's
-- ports=N wrote one range rule per protocol, tcp then udp (consecutive ids), each forwarding its
-- host ports to the same port numbers in the container; the first such pair of a container's live
-- rules is its block. A container whose pair is gone (a rule deleted or changed by the seller)
-- gets no block: its customer sees its forwards and changes none (the seller may record one by
-- selling again, or leave it so).
WITH pairs AS (
    SELECT tcp.id, tcp.container_name, COALESCE(tcp.instance_uuid, udp.instance_uuid) AS instance_uuid,
           tcp.host_port, tcp.host_port_end, tcp.created_at
    FROM nat_rules AS tcp
    JOIN nat_rules AS udp ON udp.id = tcp.id + 1
    WHERE tcp.protocol = 'tcp' AND udp.protocol = 'udp'
      AND udp.container_name = tcp.container_name
      AND tcp.container_port = tcp.host_port AND udp.container_port = udp.host_port
      AND udp.host_port = tcp.host_port AND udp.host_port_end = tcp.host_port_end
      AND tcp.orphaned_at IS NULL AND udp.orphaned_at IS NULL
      AND (tcp.instance_uuid IS NULL OR udp.instance_uuid IS NULL OR tcp.instance_uuid = udp.instance_uuid)
)
INSERT INTO port_blocks (container_name, instance_uuid, first_port, last_port, created_at)
SELECT container_name, instance_uuid, host_port, host_port_end, created_at FROM pairs
WHERE id = (SELECT MIN(first.id) FROM pairs AS first WHERE first.container_name = pairs.container_name);
