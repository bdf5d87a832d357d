"""Jinja templates of the web console (`console/<name>` in templates)."""
