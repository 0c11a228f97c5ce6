-- A rule is bound to the instance it was made for (its Incus volatile.uuid): a container deleted
-- outside the service, or made again under its name, leaves its rules orphaned (orphaned_at set):
-- kept, shown, their host ports still taken, never in the kernel. Rules made before this migration
-- have no UUID until a sync finds their container and records its UUID.
ALTER TABLE nat_rules ADD COLUMN instance_uuid TEXT;
ALTER TABLE nat_rules ADD COLUMN orphaned_at TEXT;
-- The dashboard's list reads the orphaned rules on every refresh: only those, not the whole table.
CREATE INDEX nat_rules_orphaned ON nat_rules (id) WHERE orphaned_at IS NOT NULL;
