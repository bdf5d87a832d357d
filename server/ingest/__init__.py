"""The ingestion engine."""
