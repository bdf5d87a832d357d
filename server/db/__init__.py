"""Postgres access: the pool and the migration runner. SQL is plain SQL."""
