-- One-time console links (POST /container/<name>/console_token, issue 14): a billing system asks
-- for one and hands /console/<token> to its customer. Only the SHA-256 of the token is stored, so
-- a copy of the database opens nothing. A token opens its container's console once (used_at), and
-- only until expires_at; times are UTC, 'YYYY-MM-DDTHH:MM:SSZ'.
CREATE TABLE console_tokens (
    token_hash     TEXT PRIMARY KEY,
    container_name TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT
);
CREATE INDEX console_tokens_expires ON console_tokens (expires_at);
