-- The credit plugin's objects. Versioned rows are immutable once a run has used them:
-- `used_at` is set by the run that first reads them, and the API refuses changes after it.

CREATE TABLE credit_datasets (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX credit_datasets_list ON credit_datasets (tenant_id, created_at, id);

CREATE TABLE credit_dataset_versions (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    dataset_id    uuid        NOT NULL REFERENCES credit_datasets (id) ON DELETE CASCADE,
    version       integer     NOT NULL CHECK (version >= 1),
    sha256        text        NOT NULL,
    target        text        NOT NULL,
    bad_value     text,
    time_column   text,
    source_format text        NOT NULL,
    rows          bigint      NOT NULL,
    bytes         bigint      NOT NULL,
    columns       jsonb       NOT NULL,
    profile       jsonb       NOT NULL,
    store_key     text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    used_at       timestamptz,
    UNIQUE (tenant_id, dataset_id, version),
    -- The same content under the same target returns the existing version.
    UNIQUE NULLS NOT DISTINCT (tenant_id, dataset_id, sha256, target, bad_value, time_column)
);

CREATE TABLE credit_features (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name           text        NOT NULL,
    source_columns text[]      NOT NULL,
    transform      text        NOT NULL,
    params         jsonb       NOT NULL DEFAULT '{}',
    monotone       smallint    NOT NULL DEFAULT 0 CHECK (monotone IN (-1, 0, 1)),
    description    text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    used_at        timestamptz,
    UNIQUE (tenant_id, name)
);
CREATE INDEX credit_features_list ON credit_features (tenant_id, created_at, id);

CREATE TABLE credit_feature_sets (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX credit_feature_sets_list ON credit_feature_sets (tenant_id, created_at, id);

-- A version holds its features' definitions as they were when it was made.
CREATE TABLE credit_feature_set_versions (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    feature_set_id uuid        NOT NULL REFERENCES credit_feature_sets (id) ON DELETE CASCADE,
    version        integer     NOT NULL CHECK (version >= 1),
    features       jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    used_at        timestamptz,
    UNIQUE (tenant_id, feature_set_id, version)
);

CREATE TABLE credit_runs (
    id                     uuid        PRIMARY KEY,
    tenant_id              uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state                  text        NOT NULL DEFAULT 'queued'
                           CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    spec                   jsonb       NOT NULL,
    dataset_version_id     uuid        NOT NULL REFERENCES credit_dataset_versions (id),
    feature_set_version_id uuid        NOT NULL REFERENCES credit_feature_set_versions (id),
    job_id                 uuid,
    model_family           text,
    model_version          integer,
    passed                 boolean,
    failures               jsonb       NOT NULL DEFAULT '[]',
    metrics                jsonb,
    logs                   jsonb       NOT NULL DEFAULT '[]',
    error                  text,
    artifacts              jsonb       NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    finished_at            timestamptz
);
CREATE INDEX credit_runs_list ON credit_runs (tenant_id, created_at, id);
