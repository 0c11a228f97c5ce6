-- Suspended containers (a billing system's "suspend"): start, restart, exec, password changes and
-- reinstall are refused until "unsuspend". The mark is the service's truth and survives restarts;
-- instance_uuid is the Incus volatile.uuid of the container that was suspended, so a container
-- deleted behind the service's back and created again under the same name is not suspended.
CREATE TABLE suspended (
    container_name TEXT PRIMARY KEY,
    instance_uuid  TEXT,
    suspended_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
