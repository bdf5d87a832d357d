-- The core schema: tenants, API keys and jobs. Every tenant-owned row carries
-- tenant_id, and every query filters on it.

CREATE TABLE tenants (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored as SHA-256 of the secret: the secret is random (256 bits),
-- so a slow hash adds nothing and would tax every request.
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    prefix       text        NOT NULL UNIQUE,
    secret_hash  bytea       NOT NULL,
    scopes       text[]      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

-- One row per job run through the queue; tenant_id is NULL for system jobs
-- (cron). The ARQ job id is this id, so a job enqueued twice runs once.
CREATE TABLE jobs (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        REFERENCES tenants (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    state       text        NOT NULL DEFAULT 'queued'
                            CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    payload     jsonb,
    progress    jsonb       NOT NULL DEFAULT '{"current": 0}',
    result      jsonb,
    error       text,
    attempts    integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz
);
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at DESC, id DESC);
