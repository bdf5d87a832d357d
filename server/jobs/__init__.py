"""Background jobs on ARQ: enqueueing, the worker, and their status rows."""
