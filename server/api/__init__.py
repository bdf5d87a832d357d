"""The core's HTTP routes. Plugins add theirs through `register_routes`."""
