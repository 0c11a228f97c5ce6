-- Users of the dashboard (one admin today), settings such as the API secret, the last known
-- state of each container (served when Incus is unreachable) and the NAT rules, which are the
-- source of truth the kernel's rules follow.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE containers (
    name         TEXT PRIMARY KEY,
    image        TEXT,
    status       TEXT,
    ip           TEXT,
    architecture TEXT,
    created_at   TEXT,
    snapshot     TEXT,          -- JSON of the last live info answer
    last_synced  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE nat_rules (
    id             INTEGER PRIMARY KEY,
    container_name TEXT NOT NULL,
    host_port      INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    container_port INTEGER NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
    protocol       TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    container_ip   TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE (host_port, protocol)
);

CREATE INDEX nat_rules_by_container ON nat_rules (container_name);
