-- A console link opens the instance it was made for (its Incus volatile.uuid), not a container
-- made again under the same name; links made before this migration have none and open by name.
ALTER TABLE console_tokens ADD COLUMN instance_uuid TEXT;
