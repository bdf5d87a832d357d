-- One row per drive: what the fleet views list and filter. Kept up to date
-- by every write of daily records (first/last day, model, failure) and by the
-- scoring job (latest risk and its reasons), so listing 100,000 drives never
-- scans their daily history.

CREATE TABLE drives_inventory (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    serial_number   text        NOT NULL,
    model           text        NOT NULL,
    capacity_bytes  bigint,
    first_day       date        NOT NULL,
    last_day        date        NOT NULL,
    failure_day     date,       -- the day it reported failure = 1
    risk            real,       -- latest H30 risk (drives_risk on risk_day)
    risk_day        date,
    model_version   integer,
    reasons         jsonb,
    PRIMARY KEY (tenant_id, serial_number)
);
CREATE INDEX drives_inventory_risk ON drives_inventory (tenant_id, risk DESC NULLS LAST, serial_number);
CREATE INDEX drives_inventory_model ON drives_inventory (tenant_id, model);
