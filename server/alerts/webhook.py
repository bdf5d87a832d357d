"""POSTing an alert to a webhook: the URL checked again, every DNS answer guarded,
no redirects, no proxy from the environment, a bounded wait."""

from __future__ import annotations

import aiohttp

from flywheel.server import __version__
from flywheel.server.alerts.outcome import Outcome, Refused
from flywheel.server.alerts.settings import HOSTS_VAR, AlertSettings
from flywheel.server.alerts.signing import SIGNATURE_HEADER, signature_header
from flywheel.server.net_guard import GuardedResolver, PrivateAddress, url_problem

MAX_ERROR_BODY = 200  # characters of a failing receiver's answer kept in the log


async def post_webhook(settings: AlertSettings, url: str, secret: str, body: bytes, *, delivery_id: str,
                       event: str) -> Outcome:
    # Checked at delivery too: the allow-list may have changed, and aiohttp never asks the
    # resolver about an IP literal.
    problem = url_problem(url, settings.hosts, setting=HOSTS_VAR)
    if problem:
        raise Refused(problem)
    headers = {"Content-Type": "application/json", "User-Agent": f"Flywheel-Alerts/{__version__}",
               "Flywheel-Delivery": delivery_id, "Flywheel-Event": f"alert.{event}",
               SIGNATURE_HEADER: signature_header(secret, body)}
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(settings.hosts, setting=HOSTS_VAR), force_close=True)
    timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                text = (await response.content.read(4096)).decode("utf-8", "replace")
                if 200 <= response.status < 300:
                    return Outcome(status_code=response.status)
                return Outcome(status_code=response.status,
                               error=f"HTTP {response.status}: {text[:MAX_ERROR_BODY]}".rstrip(": "))
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PrivateAddress):
                raise Refused(str(exc.os_error)) from None
            return Outcome(error=f"could not connect ({type(exc.os_error).__name__})")
        except TimeoutError:
            return Outcome(error=f"no answer within {settings.timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return Outcome(error=f"the request failed ({type(exc).__name__})")
