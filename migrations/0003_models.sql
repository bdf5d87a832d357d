-- Model registry: trained versions per tenant and family, and which one is
-- active. Artifacts live in the object store under
-- tenants/{tenant}/models/{family}/{version}/; these rows say what is there.

CREATE TABLE model_versions (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    family       text        NOT NULL,
    version      integer     NOT NULL CHECK (version > 0),
    state        text        NOT NULL DEFAULT 'training' CHECK (state IN ('training', 'ready', 'failed')),
    -- The training job that made it: a retried job reuses its version number.
    job_id       uuid        UNIQUE,
    metrics      jsonb,
    features     jsonb,
    info         jsonb,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (tenant_id, family, version)
);

CREATE TABLE active_models (
    tenant_id     uuid        NOT NULL,
    family        text        NOT NULL,
    version       integer     NOT NULL,
    activated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, family),
    FOREIGN KEY (tenant_id, family, version) REFERENCES model_versions (tenant_id, family, version) ON DELETE CASCADE
);
