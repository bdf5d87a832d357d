-- Traces of bug-fixing sessions: their events (hash-chained), chunks, artifacts, QA and scores.

CREATE TABLE traces_chain_keys (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version int NOT NULL,
    sealed text NOT NULL,            -- the HMAC key, sealed with FLYWHEEL_SECRET_KEY
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);
CREATE UNIQUE INDEX traces_chain_keys_one_active ON traces_chain_keys (tenant_id) WHERE active;

CREATE TABLE traces (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    repository text NOT NULL,
    base_commit text NOT NULL,
    task text NOT NULL,
    test_command jsonb NOT NULL,
    status text NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now(),
    finalized_at timestamptz,
    chained_through int NOT NULL DEFAULT 0,     -- the highest seq the chain covers
    chain_head bytea,                           -- the hash at chained_through
    metrics jsonb,
    gaps jsonb NOT NULL DEFAULT '[]',
    workspace_sha256 text,
    document_key text,
    qa jsonb
);
CREATE INDEX traces_tenant_created ON traces (tenant_id, created_at DESC, id DESC);

CREATE TABLE traces_chunks (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    trace_id uuid NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
    chunk_no int NOT NULL,
    digest text NOT NULL,           -- sha256 of the chunk's events, to tell a retry from a different chunk
    accepted int NOT NULL,
    duplicate int NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trace_id, chunk_no)
);

CREATE TABLE traces_events (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    trace_id uuid NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
    event_id uuid NOT NULL,
    seq int NOT NULL,
    kind text NOT NULL,
    ts timestamptz NOT NULL,
    body bytea NOT NULL,            -- the canonical bytes the chain hashes
    hash bytea,                     -- HMAC-SHA256(key, previous hash || body), set when chained
    key_version int,
    PRIMARY KEY (trace_id, event_id)
);
CREATE UNIQUE INDEX traces_events_seq ON traces_events (trace_id, seq);

CREATE TABLE traces_artifacts (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    trace_id uuid NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
    sha256 text NOT NULL,
    kind text NOT NULL,
    size bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trace_id, sha256)
);

CREATE TABLE traces_scores (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    trace_id uuid NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
    judge text NOT NULL,
    rubric_version text NOT NULL,
    overall double precision NOT NULL,
    dimensions jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trace_id, judge, rubric_version)
);

-- Judge answers that were refused (not JSON, not the rubric's shape), kept for review.
CREATE TABLE traces_judge_rejections (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    trace_id uuid NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
    judge text NOT NULL,
    attempt int NOT NULL,
    problem text NOT NULL,
    answer text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX traces_judge_rejections_trace ON traces_judge_rejections (trace_id, created_at);
