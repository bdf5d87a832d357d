-- Per-drive, per-day features, built from drives_smart_daily by the
-- drives.build_features job: levels and 7- and 30-day changes of the SMART
-- attributes that predict failure, plus age, model and capacity. A change is
-- NULL when the drive has no record exactly 7 (or 30) days earlier.

CREATE TABLE drives_features (
    tenant_id       uuid             NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day             date             NOT NULL,
    serial_number   text             NOT NULL,
    model           text             NOT NULL,
    capacity_bytes  bigint,
    failure         boolean          NOT NULL,
    age_days        integer          NOT NULL,  -- days since the drive's first record
    power_on_hours  double precision,
    temperature     double precision,
    s5    double precision, s5_d7    double precision, s5_d30    double precision,
    s187  double precision, s187_d7  double precision, s187_d30  double precision,
    s188  double precision, s188_d7  double precision, s188_d30  double precision,
    s197  double precision, s197_d7  double precision, s197_d30  double precision,
    s198  double precision, s198_d7  double precision, s198_d30  double precision,
    s199  double precision, s199_d7  double precision, s199_d30  double precision,
    temperature_d7  double precision,
    PRIMARY KEY (tenant_id, day, serial_number)
);

-- Which days have features, and when they were built (incremental builds
-- take the days that are in drives_smart_daily and not here).
CREATE TABLE drives_feature_days (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day        date        NOT NULL,
    rows       integer     NOT NULL,
    built_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day)
);
