-- One row per drive per day, as Backblaze drive-stats publishes it. The
-- attributes the model uses have their own columns; every other SMART value
-- present in the source row is kept in `smart` (columns come and go between
-- years, so nothing is dropped).

CREATE TABLE drives_smart_daily (
    tenant_id       uuid             NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day             date             NOT NULL,
    serial_number   text             NOT NULL,
    model           text             NOT NULL,
    capacity_bytes  bigint,
    failure         boolean          NOT NULL,
    smart_5_raw     double precision,  -- reallocated sectors
    smart_9_raw     double precision,  -- power-on hours
    smart_187_raw   double precision,  -- reported uncorrectable errors
    smart_188_raw   double precision,  -- command timeouts
    smart_194_raw   double precision,  -- temperature
    smart_197_raw   double precision,  -- current pending sectors
    smart_198_raw   double precision,  -- offline uncorrectable
    smart_199_raw   double precision,  -- UDMA CRC errors
    smart           jsonb            NOT NULL DEFAULT '{}',
    source          text             NOT NULL,  -- the file it came from, or 'event'
    PRIMARY KEY (tenant_id, day, serial_number)
);
CREATE INDEX drives_smart_daily_drive ON drives_smart_daily (tenant_id, serial_number, day);

-- Files already imported, by content: re-importing one is a no-op, and an
-- interrupted import resumes with the files it had not finished.
CREATE TABLE drives_imports (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sha256       text        NOT NULL,
    file_name    text        NOT NULL,
    first_day    date        NOT NULL,
    last_day     date        NOT NULL,
    rows         integer     NOT NULL,
    inserted     integer     NOT NULL,
    failures     integer     NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256)
);
