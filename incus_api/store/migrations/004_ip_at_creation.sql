-- The address a rule was made for, kept as it was: container_ip follows the address Incus assigns
-- to the container (a sync updates it), ip_at_creation never changes.
ALTER TABLE nat_rules ADD COLUMN ip_at_creation TEXT;
UPDATE nat_rules SET ip_at_creation = container_ip;
