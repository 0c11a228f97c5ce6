-- Issue 21: backups, one file each in BACKUP_DIR (and a copy in S3 when configured).
-- state: running (being written), ok (written and verified), failed (error says why).
-- s3_state: NULL (no S3), uploading, ok, failed (s3_error says why).
CREATE TABLE backups (
    id             INTEGER PRIMARY KEY,
    container_name TEXT NOT NULL,
    instance_uuid  TEXT,
    file           TEXT NOT NULL UNIQUE,
    trigger        TEXT NOT NULL DEFAULT 'api' CHECK (trigger IN ('api', 'dashboard', 'schedule', 'import')),
    state          TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'ok', 'failed')),
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    finished_at    TEXT,
    size           INTEGER,
    sha256         TEXT,
    error          TEXT,
    local          INTEGER NOT NULL DEFAULT 1,
    s3_key         TEXT,
    s3_state       TEXT CHECK (s3_state IN ('uploading', 'ok', 'failed')),
    s3_error       TEXT
);
CREATE INDEX backups_by_container ON backups (container_name, id);
