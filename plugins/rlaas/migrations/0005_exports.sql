-- Training data exports: SFT and DPO data sets written as JSONL to the tenant's
-- object store (exports.py). One row per export; the rlaas.export job fills it
-- in: queued -> running -> succeeded (row count, SHA-256, object keys) or failed
-- (error). The objects are rlaas/exports/{export_id}/data.jsonl and manifest.json.

CREATE TABLE rlaas_exports (
    export_id    uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN ('sft', 'dpo')),
    status       text        NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    -- What was asked for, as the API took it (export_types.ExportSelection).
    selection    jsonb       NOT NULL,
    job_id       uuid,
    row_count    bigint,
    -- Rows the selection matched but that could not be written (not plain text, no answer), by reason.
    skipped      jsonb       NOT NULL DEFAULT '{}',
    size_bytes   bigint,
    sha256       text,       -- of data.jsonl's bytes, hex
    object_key   text,       -- keys in the tenant's store (tenant prefix not included)
    manifest_key text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    error        text,
    CHECK ((status = 'succeeded') = (sha256 IS NOT NULL))
);
CREATE INDEX rlaas_exports_list ON rlaas_exports (tenant_id, created_at DESC, export_id DESC);
