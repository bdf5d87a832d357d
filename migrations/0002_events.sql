-- Events: one day-partitioned table for every plugin's event types.
--
-- An event is identified by (tenant_id, event_id) within its day: retries of
-- the same event carry the same timestamp, so they land in the same partition
-- and the primary key stores them once. (Postgres requires the partition key
-- in every unique index of a partitioned table.)
CREATE TABLE events (
    tenant_id   uuid        NOT NULL,
    event_id    uuid        NOT NULL,
    day         date        NOT NULL,   -- UTC date of ts: the partition key
    ts          timestamptz NOT NULL,
    type        text        NOT NULL,
    subject_id  text,
    session_id  text,
    body        jsonb       NOT NULL,   -- the whole event, PII already scrubbed
    received_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id, day)
) PARTITION BY RANGE (day);

-- Reads: a tenant's events by time (keyset pagination on ts, event_id).
CREATE INDEX events_tenant_ts ON events (tenant_id, ts DESC, event_id DESC);

-- Creates the daily partitions covering [first, last]; safe to call often.
CREATE FUNCTION flywheel_ensure_event_partitions(first date, last date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date := first;
    created integer := 0;
    name text;
BEGIN
    WHILE d <= last LOOP
        name := 'events_' || to_char(d, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                           name, d, d + 1);
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END $$;

-- Idempotency-Key records for write endpoints: the first response is kept
-- for 24 hours and replayed for the same key and body.
CREATE TABLE idempotency_keys (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key          text        NOT NULL,
    method       text        NOT NULL,
    path         text        NOT NULL,
    body_sha256  bytea       NOT NULL,
    status       integer,               -- NULL while the first request runs
    content_type text,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Per-tenant exceptions to PII scrubbing.
CREATE TABLE pii_allow_lists (
    tenant_id  uuid        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    allow      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
