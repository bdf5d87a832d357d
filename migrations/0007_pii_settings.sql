-- Per-tenant PII settings, beside the allow-list: the regions whose national
-- phone formats are recognised, and the optional kinds switched on (IBAN, MAC).
-- No row: the defaults (flywheel.contracts.pii.PiiSettings).
CREATE TABLE pii_settings (
    tenant_id  uuid        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    settings   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
