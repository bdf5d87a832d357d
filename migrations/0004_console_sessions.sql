-- Web console sign-ins. The cookie carries a random 256-bit session id; only
-- its SHA-256 is stored, so a copy of this table signs nobody in. A session
-- acts as the API key it was opened with: revoking the key (or deleting the
-- key or tenant) ends it, because every lookup joins api_keys on
-- revoked_at IS NULL. Expired rows are swept at each sign-in.
CREATE TABLE console_sessions (
    id_hash     bytea       PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id      uuid        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
CREATE INDEX console_sessions_key ON console_sessions (key_id);
