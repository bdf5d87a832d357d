"""Prometheus metrics of the ingestion engine."""

import functools

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("flywheel_events_total", "Events received, by type and outcome "
                 "(accepted, duplicate, rejected)", ["type", "outcome"])
FLUSH_EVENTS = Histogram("flywheel_ingest_flush_events", "Events per group commit",
                         buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000))
FLUSH_SECONDS = Histogram("flywheel_ingest_flush_seconds", "Time to commit one group",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
QUEUE_EVENTS = Gauge("flywheel_ingest_queue_events", "Events waiting for a group commit")
SPOOL_BYTES = Gauge("flywheel_ingest_spool_bytes", "Bytes in the on-disk spool")
SPOOL_BATCHES = Gauge("flywheel_ingest_spool_batches", "Batches in the on-disk spool")
SPOOLED = Counter("flywheel_ingest_spooled_events_total", "Events written to the spool (Postgres unavailable)")
DRAINED = Counter("flywheel_ingest_drained_events_total", "Spooled events committed to Postgres")
DROPPED_NOTIFICATIONS = Counter("flywheel_ingest_dropped_notifications_total",
                                "Committed batches not passed to on_events_committed (subscribers too slow)")
ARCHIVE_ERRORS = Counter("flywheel_ingest_archive_errors_total", "JSONL archive writes that failed")
COPY_CONFLICTS = Counter("flywheel_ingest_copy_conflicts_total",
                         "Group commits whose plain COPY met a stored event and went through the staging table")


@functools.cache
def events(type_: str, outcome: str) -> Counter:
    """The `EVENTS` series for a type and outcome (`.labels()` costs microseconds; types are few)."""
    return EVENTS.labels(type_, outcome)
QUARANTINED = Counter("flywheel_ingest_quarantined_events_total",
                      "Spooled events Postgres refused to store, moved to the dead-letter folder")
QUARANTINE_FILES = Gauge("flywheel_ingest_quarantine_files", "Files in the spool's dead-letter folder")
FLUSH_TIMEOUTS = Counter("flywheel_ingest_flush_timeouts_total",
                         "Group commits Postgres did not finish within the flush deadline (spooled instead)")
SPLIT_GROUPS = Counter("flywheel_ingest_split_groups_total",
                       "Group commits refused for a data reason and retried request by request")
