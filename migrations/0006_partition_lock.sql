-- Two processes creating the same day's partition at once (API workers
-- starting together on a day a partition is due) raced past the existence
-- check, and one failed with DuplicateTableError: CREATE TABLE IF NOT EXISTS
-- is not atomic against a concurrent create. Callers now take turns on a
-- transaction-scoped advisory lock; the second finds the partitions made.
CREATE OR REPLACE FUNCTION flywheel_ensure_event_partitions(first date, last date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date := first;
    created integer := 0;
    name text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('flywheel_ensure_event_partitions'));
    WHILE d <= last LOOP
        name := 'events_' || to_char(d, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', name, d, d + 1);
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END $$;
