-- Jobs can be cancelled: a queued one at once, a running one when its worker
-- cancels its task (ARQ's abort) or when the job next reports progress.
-- `cancel_requested` tells a cancellation apart from a worker shutting down
-- (which also cancels the task, and must leave the job to be retried), and
-- `cancelled_by` says who asked.
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE jobs ADD COLUMN cancel_requested_at timestamptz;
ALTER TABLE jobs ADD COLUMN cancelled_by text;
