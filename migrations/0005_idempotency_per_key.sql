-- Stored idempotent responses belong to the API key that made the request,
-- not only to its tenant: a response (say a new admin key's secret) must
-- never be replayed to another key of the tenant, whatever its scopes.
-- Rows kept so far cannot be attributed to a key: they are dropped (they
-- live 24 hours; a retry after the upgrade runs its request once more).
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys ADD COLUMN key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (tenant_id, key_id, key);
