"""Judging a finalized trace against the rubric: an LLM behind an OpenAI-compatible API, or rules."""
