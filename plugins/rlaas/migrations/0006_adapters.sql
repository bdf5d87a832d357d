-- LoRA adapters trained on an export (adapters.py, trainer/). One row per version
-- of a named adapter; the rlaas.train_adapter job fills it in:
-- queued -> running -> succeeded (metrics, files) | failed (error) | cancelled.
-- The files are in the tenant's object store under object_prefix
-- (rlaas/adapters/{id}/): PEFT's adapter folder, the training config, the data
-- manifest and the metrics. Nothing is stored there until training has finished.

CREATE TABLE rlaas_adapters (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    version       integer     NOT NULL CHECK (version >= 1),
    method        text        NOT NULL CHECK (method IN ('sft', 'dpo')),
    status        text        NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    base_model    text        NOT NULL,
    -- No foreign key: the data manifest below keeps what was trained on, whatever becomes of the export.
    export_id     uuid        NOT NULL,
    -- The hyperparameters as validated (trainer/config.py TrainConfig).
    config        jsonb       NOT NULL,
    -- The export's manifest.json (selection, row count, SHA-256) as trained on.
    data_manifest jsonb,
    -- final_loss, steps, step time, loss history, ... (trainer/train.py TrainResult).
    metrics       jsonb,
    files         jsonb       NOT NULL DEFAULT '[]',
    object_prefix text        NOT NULL,
    job_id        uuid,
    description   text        NOT NULL DEFAULT '',
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    UNIQUE (tenant_id, name, version),
    CHECK ((status = 'succeeded') = (metrics IS NOT NULL))
);
CREATE INDEX rlaas_adapters_list ON rlaas_adapters (tenant_id, created_at DESC, id DESC);
