-- Model monitoring (server/monitoring/): what each version saw in training,
-- what it has scored since, and the daily figures comparing the two.

-- A version's training distribution, written by core.train_model beside the
-- version: one row per feature (position = its ONNX column) and one for the
-- score (position = the number of features, kind 'score', bins over the
-- margin). Numeric bins are (-inf, e0], (e0, e1], ..., (e_last, inf) over
-- quantile `edges` of the training rows, then a missing bin; a categorical's
-- bins are its `categories` (the most frequent trained values), "other", then
-- missing or unseen. `shares` follow that order and sum to 1.
CREATE TABLE model_reference_bins (
    tenant_id     uuid             NOT NULL,
    family        text             NOT NULL,
    version       integer          NOT NULL,
    position      integer          NOT NULL CHECK (position >= 0),
    name          text             NOT NULL,
    kind          text             NOT NULL CHECK (kind IN ('numeric', 'category', 'score')),
    edges         double precision[],
    categories    text[],
    shares        double precision[] NOT NULL,
    missing_rate  double precision NOT NULL,
    rows          integer          NOT NULL,
    PRIMARY KEY (tenant_id, family, version, position),
    FOREIGN KEY (tenant_id, family, version) REFERENCES model_versions (tenant_id, family, version)
        ON DELETE CASCADE
);

-- What the scoring path counted per version and UTC day, flushed from memory
-- every few seconds (never a write per request): bin counts of every
-- position, concatenated in position order (the layout of the version's
-- reference), the rows they count and the sum of their probabilities.
CREATE TABLE model_scored_bins (
    tenant_id   uuid             NOT NULL,
    family      text             NOT NULL,
    version     integer          NOT NULL,
    day         date             NOT NULL,
    rows        bigint           NOT NULL,
    score_sum   double precision NOT NULL,
    counts      bigint[]         NOT NULL,
    PRIMARY KEY (tenant_id, family, version, day),
    FOREIGN KEY (tenant_id, family, version) REFERENCES model_versions (tenant_id, family, version)
        ON DELETE CASCADE
);

-- Operational counters per version, UTC day and endpoint (score, score_batch,
-- score_table): requests, rows, refused requests (a client's bad rows) and
-- failures, and a latency histogram over fixed log-spaced buckets
-- (server/monitoring/latency.py), so flushes and replicas add up exactly.
CREATE TABLE model_scoring_counters (
    tenant_id      uuid     NOT NULL,
    family         text     NOT NULL,
    version        integer  NOT NULL,
    day            date     NOT NULL,
    endpoint       text     NOT NULL,
    requests       bigint   NOT NULL,
    rows           bigint   NOT NULL,
    client_errors  bigint   NOT NULL,
    server_errors  bigint   NOT NULL,
    latency        bigint[] NOT NULL,
    PRIMARY KEY (tenant_id, family, version, day, endpoint),
    FOREIGN KEY (tenant_id, family, version) REFERENCES model_versions (tenant_id, family, version)
        ON DELETE CASCADE
);

-- The daily job's figures per version and day (recomputing a day replaces
-- its row): PSI per feature and of the score, missing-rate changes,
-- calibration, operational figures and the thresholds crossed, as one JSON
-- document (server/monitoring/contracts.py, DayFigures), with the figures
-- lists and alerts filter on beside it.
CREATE TABLE model_monitoring_days (
    tenant_id          uuid             NOT NULL,
    family             text             NOT NULL,
    version            integer          NOT NULL,
    day                date             NOT NULL,
    rows               bigint           NOT NULL,
    score_psi          double precision,
    max_feature_psi    double precision,
    calibration_error  double precision,
    figures            jsonb            NOT NULL,
    computed_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, family, version, day),
    FOREIGN KEY (tenant_id, family, version) REFERENCES model_versions (tenant_id, family, version)
        ON DELETE CASCADE
);
CREATE INDEX model_monitoring_days_by_day ON model_monitoring_days (tenant_id, family, day);

-- A tenant's own thresholds for a family, over the family's defaults: only
-- the fields the tenant set (a JSON object of MonitoringThresholds fields).
CREATE TABLE model_monitoring_thresholds (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    family      text        NOT NULL,
    overrides   jsonb       NOT NULL,
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, family)
);
