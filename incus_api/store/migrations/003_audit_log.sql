-- Every state-changing request: who, from where, what, on what, and how it ended. Never secrets:
-- only allow-listed form fields are kept (no passwords, no command lines).
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor          TEXT NOT NULL,
    client_address TEXT,
    method         TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT,
    details        TEXT,
    status_code    INTEGER NOT NULL,
    result         TEXT NOT NULL
);
CREATE INDEX audit_log_by_target ON audit_log (target, id);
