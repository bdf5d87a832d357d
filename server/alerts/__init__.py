"""Alerts: raised by conditions and monitors, deduplicated while open, acknowledged and
resolved by people (or resolved when their condition clears), delivered to webhooks and
e-mail by the tenant's rules.

- `raise_alert.py`: opening and repeating an alert (the function everything calls)
- `matching.py`: which tenant rule governs an alert
- `lifecycle.py`: acknowledge and resolve, auto-resolve
- `conditions.py`: plugins' conditions, evaluated per tenant by a cron job
- `dispatch.py`, `delivery.py`, `webhook.py`, `email.py`: delivering to channels, retried
- `api.py` and the modules it uses: `/v1/alerts`, rules, channels, SMTP, deliveries, exports
"""

from flywheel.server.alerts.lifecycle import resolve_cleared
from flywheel.server.alerts.raise_alert import raise_alert

__all__ = ["raise_alert", "resolve_cleared"]
