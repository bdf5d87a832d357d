-- Daily risk per active drive, from the drives.score_fleet job: the H30
-- probability, the model version that gave it, and (for the riskiest drives)
-- the features that pushed the score up most.

CREATE TABLE drives_risk (
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day            date        NOT NULL,
    serial_number  text        NOT NULL,
    risk           real        NOT NULL CHECK (risk >= 0 AND risk <= 1),
    model_version  integer     NOT NULL,
    reasons        jsonb,
    scored_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day, serial_number)
);
CREATE INDEX drives_risk_by_risk ON drives_risk (tenant_id, day, risk DESC);
CREATE INDEX drives_risk_by_drive ON drives_risk (tenant_id, serial_number, day);
