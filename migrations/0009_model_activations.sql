-- Who activated which version of a model, and when: the audit entry the
-- console shows beside a family and `GET /v1/models/{family}/activations`
-- returns. One row per activation (by hand or automatic after training).
CREATE TABLE model_activations (
    id               bigserial   PRIMARY KEY,
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    family           text        NOT NULL,
    version          integer     NOT NULL,
    previous_version integer,
    activated_by     text        NOT NULL,
    activated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_activations_family ON model_activations (tenant_id, family, activated_at DESC, id DESC);
