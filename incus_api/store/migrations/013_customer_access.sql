-- The customer's panel (issue 19): one-time links a billing system asks for
-- (POST /container/<name>/customer_link) and the browsers they signed in. Like console links,
-- only the SHA-256 of a token or of a session's id is stored, and both are bound to the instance
-- (its Incus volatile.uuid): a container made again under the same name is another customer's.
CREATE TABLE customer_links (
    token_hash     TEXT PRIMARY KEY,
    container_name TEXT NOT NULL,
    instance_uuid  TEXT,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT
);
CREATE INDEX customer_links_expires ON customer_links (expires_at);
CREATE INDEX customer_links_container ON customer_links (container_name);

CREATE TABLE customer_sessions (
    session_hash   TEXT PRIMARY KEY,
    container_name TEXT NOT NULL,
    instance_uuid  TEXT,
    created_at     TEXT NOT NULL,
    last_seen      TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    client_address TEXT
);
CREATE INDEX customer_sessions_container ON customer_sessions (container_name);
