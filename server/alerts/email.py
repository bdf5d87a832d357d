"""Sending an alert by e-mail through the tenant's SMTP server (aiosmtplib).

The connection is opened by `connect_guarded`, so the server's address
passes the same DNS guard as a webhook's; aiosmtplib then speaks SMTP over
that socket, with the host name for STARTTLS / TLS certificate checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from flywheel.server.alerts.contracts import Alert
from flywheel.server.alerts.outcome import Outcome, Refused
from flywheel.server.alerts.settings import HOSTS_VAR, SMTP_PORTS, AlertSettings
from flywheel.server.net_guard import PrivateAddress, connect_guarded, host_problem


@dataclass
class SmtpServer:
    host: str
    port: int
    security: str  # "starttls", "tls" or "none"
    sender: str
    username: str | None = None
    password: str | None = None


def smtp_problem(host: str, port: int, allowed: list[str]) -> str | None:
    """Why Flywheel may not send through host:port, or None."""
    problem = host_problem(host, allowed, setting=HOSTS_VAR)
    if problem:
        return problem
    if port not in SMTP_PORTS and host.lower() not in allowed:
        return f"port {port} is not an SMTP port ({', '.join(map(str, sorted(SMTP_PORTS)))}) unless {host} " \
               f"is named in {HOSTS_VAR}"
    return None


def alert_message(alert: Alert, sender: str, recipients: list[str], *, event: str, delivery_id: str,
                  link: str | None) -> EmailMessage:
    message = EmailMessage()
    verb = "resolved" if event == "resolved" else alert.severity.upper()
    message["Subject"] = f"[Flywheel {verb}] {alert.title}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Flywheel-Delivery"] = delivery_id
    lines = [alert.title, "", f"rule:     {alert.rule}", f"key:      {alert.key}", f"severity: {alert.severity}",
             f"state:    {alert.state}", f"seen:     {alert.count} time(s), first {alert.first_seen:%Y-%m-%d %H:%M} "
             f"UTC, last {alert.last_seen:%Y-%m-%d %H:%M} UTC", ""]
    lines += [f"{name}: {value}" for name, value in sorted(alert.details.items())]
    if link:
        lines += ["", link]
    message.set_content("\n".join(lines))
    return message


async def send_email(settings: AlertSettings, server: SmtpServer, message: EmailMessage,
                     recipients: list[str]) -> Outcome:
    problem = smtp_problem(server.host, server.port, settings.hosts)
    if problem:
        raise Refused(problem)
    try:
        sock = await connect_guarded(server.host, server.port, settings.hosts, setting=HOSTS_VAR,
                                     timeout=settings.timeout_s)
    except PrivateAddress as exc:
        raise Refused(str(exc)) from None
    except OSError as exc:
        return Outcome(error=f"could not connect to {server.host}:{server.port} ({type(exc).__name__})")
    smtp = aiosmtplib.SMTP(hostname=server.host, sock=sock, use_tls=server.security == "tls",
                           start_tls=server.security == "starttls", username=server.username,
                           password=server.password, timeout=settings.timeout_s)
    try:
        async with smtp:
            refused, reply = await smtp.send_message(message, sender=server.sender, recipients=recipients)
    except aiosmtplib.SMTPResponseException as exc:
        return Outcome(status_code=exc.code, error=f"SMTP {exc.code}: {exc.message[:200]}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Outcome(error=f"SMTP failed ({type(exc).__name__}: {str(exc)[:200]})")
    finally:
        sock.close()
    if refused:
        # Delivered to the others: a retry would send them a second copy.
        return Outcome(status_code=250, note=f"refused recipients: {', '.join(sorted(refused))[:200]}")
    return Outcome(status_code=250)
