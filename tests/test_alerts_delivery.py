"""Delivering alerts: a signed webhook to a real HTTP server, retries with backoff and their log,
e-mail through a real SMTP server, the SSRF guard, and deliveries kept per tenant."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from flywheel.server.alerts import raise_alert
from flywheel.server.alerts.signing import SIGNATURE_HEADER, verify

LOOPBACK = "*,127.0.0.1"


@dataclass
class Receiver:
    """A webhook receiver: answers `statuses` in turn (then 200), verifies each signature."""

    statuses: list[int] = field(default_factory=list)
    secret: str | None = None
    calls: list[dict] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append({"at": time.monotonic(), "body": json.loads(body), "headers": dict(request.headers),
                           "verified": verify(self.secret, request.headers.get(SIGNATURE_HEADER, ""), body)
                           if self.secret else None,
                           "tampered": verify(self.secret, request.headers.get(SIGNATURE_HEADER, ""), body + b" ")
                           if self.secret else None})
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="boom" if status >= 500 else "ok")


@asynccontextmanager
async def receiver(statuses=(), host="127.0.0.1"):
    r = Receiver(statuses=list(statuses))
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    r.url = f"http://{host}:{port}/hook"
    try:
        yield r
    finally:
        await runner.cleanup()


async def webhook_to(client, tenant, url, *, rule_match="test.*"):
    r = await client.post("/v1/alerts/channels", json={"name": "hook", "kind": "webhook", "url": url},
                          headers=tenant.headers)
    assert r.status_code == 201, r.text
    channel = r.json()
    r = await client.post("/v1/alerts/rules", json={"match": rule_match, "channel_ids": [channel["id"]]},
                          headers=tenant.headers)
    assert r.status_code == 201, r.text
    return channel


async def raise_one(state, tenant, key="disk-1"):
    return await raise_alert(state, tenant.id, rule="test.disk_full", key=key, severity="critical",
                             title="Disk 1 is full", details={"used": 0.97})


async def deliveries(client, tenant, **params):
    r = await client.get("/v1/alerts/deliveries", params=params, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_a_webhook_is_delivered_signed_and_verified_by_the_receiver(client, state, worker, tenant,
                                                                          monkeypatch):
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    async with receiver() as hook:
        channel = await webhook_to(client, tenant, hook.url)
        assert channel["secret"].startswith("whsec_")
        hook.secret = channel["secret"]
        listed = (await client.get(f"/v1/alerts/channels/{channel['id']}", headers=tenant.headers)).json()
        assert listed["secret"] is None  # shown once, at creation
        alert = await raise_one(state, tenant)
        await raise_one(state, tenant)  # a repeat is not delivered again
        await worker()
    (call,) = hook.calls
    assert call["verified"] is True and call["tampered"] is False
    body = call["body"]
    assert body["event"] == "alert.opened" and body["alert"]["id"] == str(alert.id) and body["attempt"] == 1
    assert call["headers"]["Flywheel-Delivery"] == body["id"] and call["headers"]["Flywheel-Event"] == "alert.opened"
    (d,) = await deliveries(client, tenant)
    assert d["id"] == body["id"] and d["state"] == "delivered" and d["channel_name"] == "hook"
    assert [(a["attempt"], a["status_code"], a["error"]) for a in d["log"]] == [(1, 200, None)]
    assert d["log"][0]["duration_ms"] > 0


async def test_a_failing_webhook_is_retried_with_backoff_and_both_attempts_are_logged(client, state, worker, tenant,
                                                                                    monkeypatch):
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    monkeypatch.setenv("FLYWHEEL_ALERTS_RETRY_BASE_S", "0.5")
    async with receiver(statuses=[500]) as hook:
        hook.secret = (await webhook_to(client, tenant, hook.url))["secret"]
        alert = await raise_one(state, tenant)
        await worker(wait_deferred=True)  # the deferred second attempt too
    first, second = hook.calls
    assert first["body"]["id"] == second["body"]["id"]  # one delivery: the receiver can drop a repeat
    assert [first["body"]["attempt"], second["body"]["attempt"]] == [1, 2]
    assert first["verified"] and second["verified"]
    assert second["at"] - first["at"] >= 0.5  # the backoff
    (d,) = await deliveries(client, tenant, alert_id=str(alert.id))
    assert d["state"] == "delivered" and d["attempts"] == 2
    assert [(a["attempt"], a["status_code"]) for a in d["log"]] == [(1, 500), (2, 200)]
    assert d["log"][0]["error"] == "HTTP 500: boom" and d["log"][1]["error"] is None
    started = [datetime.fromisoformat(a["started_at"]) for a in d["log"]]
    assert (started[1] - started[0]).total_seconds() >= 0.5
    one = (await client.get(f"/v1/alerts/deliveries/{d['id']}", headers=tenant.headers)).json()
    assert one["log"] == d["log"]


async def test_a_webhook_that_keeps_failing_gives_up_after_the_last_attempt(client, state, worker, tenant,
                                                                          monkeypatch):
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    monkeypatch.setenv("FLYWHEEL_ALERTS_RETRY_BASE_S", "0.05")
    monkeypatch.setenv("FLYWHEEL_ALERTS_MAX_ATTEMPTS", "3")
    async with receiver(statuses=[503, 503, 503, 503]) as hook:
        await webhook_to(client, tenant, hook.url)
        await raise_one(state, tenant)
        await worker(wait_deferred=True)
    assert len(hook.calls) == 3
    (d,) = await deliveries(client, tenant)
    assert d["state"] == "failed" and [a["status_code"] for a in d["log"]] == [503, 503, 503]


async def test_resolving_tells_the_channels_that_heard_of_the_alert(client, state, worker, tenant, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    async with receiver() as hook:
        hook.secret = (await webhook_to(client, tenant, hook.url))["secret"]
        alert = await raise_one(state, tenant)
        await worker()
        r = await client.post(f"/v1/alerts/{alert.id}/resolve", json={"note": "fixed"}, headers=tenant.headers)
        assert r.status_code == 200
        await worker()
    assert [c["body"]["event"] for c in hook.calls] == ["alert.opened", "alert.resolved"]
    assert hook.calls[1]["body"]["alert"]["resolve_note"] == "fixed" and hook.calls[1]["verified"]


async def test_a_rotated_secret_signs_the_next_delivery(client, state, worker, tenant, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    async with receiver() as hook:
        channel = await webhook_to(client, tenant, hook.url)
        r = await client.post(f"/v1/alerts/channels/{channel['id']}/rotate-secret", headers=tenant.headers)
        assert r.status_code == 200 and r.json()["secret"] != channel["secret"]
        hook.secret = r.json()["secret"]
        await raise_one(state, tenant)
        await worker()
    assert hook.calls[0]["verified"] is True
    assert verify(channel["secret"], hook.calls[0]["headers"][SIGNATURE_HEADER],
                  json.dumps(hook.calls[0]["body"]).encode()) is False


# -- SSRF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/hook",
                                 "http://169.254.169.254/latest/meta-data", "http://localhost/hook",
                                 "http://db.internal/hook"])
async def test_a_webhook_to_a_private_address_is_refused(client, tenant, url):
    r = await client.post("/v1/alerts/channels", json={"name": "x", "kind": "webhook", "url": url},
                          headers=tenant.headers)
    assert r.status_code == 422 and r.json()["code"] == "url_not_allowed" and r.json()["field"] == "$.url", r.text
    assert "FLYWHEEL_ALERTS_HOSTS" in r.json()["message"]


@pytest.mark.parametrize(("url", "field"), [("ftp://example.com/x", "$.url"), ("http://u:p@example.com/", "$.url"),
                                            ("http://example.com:99999/", "$.url")])
async def test_a_webhook_url_that_is_not_plain_http_is_refused(client, tenant, url, field):
    r = await client.post("/v1/alerts/channels", json={"name": "x", "kind": "webhook", "url": url},
                          headers=tenant.headers)
    assert r.status_code == 422 and r.json()["field"] == field, r.text


async def test_a_private_address_is_allowed_only_when_the_operator_names_it(client, state, worker, tenant,
                                                                          monkeypatch):
    async with receiver() as hook:
        monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
        await webhook_to(client, tenant, hook.url)
        # The operator takes 127.0.0.1 off the list after the channel was written: checked again when sent.
        monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", "*")
        await raise_one(state, tenant)
        await worker()
    assert hook.calls == []
    (d,) = await deliveries(client, tenant)
    assert d["state"] == "failed" and d["attempts"] == 1  # refused: not retried
    assert d["log"][0]["error"].startswith("refused: 127.0.0.1 is a private, loopback or link-local address")


async def test_a_public_looking_name_that_resolves_inside_is_refused_by_the_dns_guard(client, state, worker, tenant,
                                                                                    monkeypatch):
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", "*")
    # This machine's /etc/hosts points its host name at 127.0.0.1: not private by its name, only by DNS.
    name = socket.gethostname().lower()
    assert socket.gethostbyname(name).startswith("127."), "the test needs a host name that resolves to loopback"
    async with receiver(host=name) as hook:
        await webhook_to(client, tenant, hook.url)  # accepted when written: a name, not an address
        await raise_one(state, tenant)
        await worker()
    assert hook.calls == []
    (d,) = await deliveries(client, tenant)
    assert d["state"] == "failed"
    assert d["log"][0]["error"] == (f"refused: {name} resolves to a private, loopback or link-local address: "
                                    "name it in FLYWHEEL_ALERTS_HOSTS to allow it")


# -- e-mail ---------------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's name)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "data": envelope.content.decode()})
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"flywheel" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd's controller needs the port before it starts
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)  # no mail without the right login
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


async def test_an_email_is_received_by_the_smtp_server(client, state, worker, tenant, smtp_server, monkeypatch):
    inbox, port = smtp_server
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    h = tenant.headers
    r = await client.put("/v1/alerts/smtp", json={"host": "127.0.0.1", "port": port, "security": "none",
                                                  "sender": "alerts@example.com", "username": "flywheel",
                                                  "password": "s3cret"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["password_set"] is True and r.json()["configured"] is True and "password" not in r.json()
    sealed = await state.db.fetchval("SELECT password_sealed FROM alert_smtp WHERE tenant_id = $1", tenant.id)
    assert "s3cret" not in sealed  # sealed at rest
    channel = (await client.post("/v1/alerts/channels", json={"name": "ops mail", "kind": "email",
                                                              "recipients": ["ops@example.com", "oncall@example.com"]},
                                 headers=h)).json()
    assert channel["secret"] is None
    await client.post("/v1/alerts/rules", json={"match": "test.*", "channel_ids": [channel["id"]]}, headers=h)
    alert = await raise_one(state, tenant)
    await worker()
    await asyncio.sleep(0)
    (mail,) = inbox.messages
    assert mail["from"] == "alerts@example.com" and mail["to"] == ["ops@example.com", "oncall@example.com"]
    assert "Subject: [Flywheel CRITICAL] Disk 1 is full" in mail["data"]
    assert "rule:     test.disk_full" in mail["data"] and "used: 0.97" in mail["data"]
    (d,) = await deliveries(client, tenant)
    assert d["alert_id"] == str(alert.id) and d["state"] == "delivered" and d["channel_kind"] == "email"
    assert f"Flywheel-Delivery: {d['id']}" in mail["data"]
    assert [(a["status_code"], a["error"]) for a in d["log"]] == [(250, None)]


async def test_wrong_smtp_credentials_are_logged_and_retried(client, state, worker, tenant, smtp_server, monkeypatch):
    inbox, port = smtp_server
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    monkeypatch.setenv("FLYWHEEL_ALERTS_RETRY_BASE_S", "0.05")
    monkeypatch.setenv("FLYWHEEL_ALERTS_MAX_ATTEMPTS", "2")
    await client.put("/v1/alerts/smtp", json={"host": "127.0.0.1", "port": port, "security": "none",
                                              "sender": "alerts@example.com", "username": "flywheel",
                                              "password": "wrong"}, headers=tenant.headers)
    channel = (await client.post("/v1/alerts/channels", json={"name": "m", "kind": "email",
                                                              "recipients": ["ops@example.com"]},
                                 headers=tenant.headers)).json()
    await client.post("/v1/alerts/rules", json={"match": "*", "channel_ids": [channel["id"]]}, headers=tenant.headers)
    await raise_one(state, tenant)
    await worker(wait_deferred=True)  # the deferred second attempt too
    assert inbox.messages == []
    (d,) = await deliveries(client, tenant)
    assert d["state"] == "failed" and [a["status_code"] for a in d["log"]] == [535, 535]
    assert d["log"][0]["error"].startswith("SMTP 535")


async def test_an_smtp_server_whose_name_resolves_inside_is_refused_when_sending(client, state, worker, tenant,
                                                                              monkeypatch):
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", "*")
    name = socket.gethostname().lower()  # resolves to 127.0.0.1 here (/etc/hosts)
    r = await client.put("/v1/alerts/smtp", json={"host": name, "port": 587, "sender": "a@example.com"},
                         headers=tenant.headers)
    assert r.status_code == 200, r.text  # a name: only DNS can tell
    channel = (await client.post("/v1/alerts/channels", json={"name": "m", "kind": "email",
                                                              "recipients": ["ops@example.com"]},
                                 headers=tenant.headers)).json()
    await client.post("/v1/alerts/rules", json={"match": "*", "channel_ids": [channel["id"]]}, headers=tenant.headers)
    await raise_one(state, tenant)
    await worker()
    (d,) = await deliveries(client, tenant)
    assert d["state"] == "failed" and d["attempts"] == 1
    assert d["log"][0]["error"] == (f"refused: {name} resolves to a private, loopback or link-local address: "
                                    "name it in FLYWHEEL_ALERTS_HOSTS to allow it")


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"host": "10.0.0.5", "port": 587, "sender": "a@example.com"}, "$.host", "host_not_allowed"),
    ({"host": "smtp.example.com", "port": 6379, "sender": "a@example.com"}, "$.host", "host_not_allowed"),
    ({"host": "smtp.example.com", "sender": "Eve <a@example.com>"}, "$.sender", "invalid_address"),
    ({"host": "smtp.example.com", "sender": "a@example.com", "username": "u"}, "$.password", "validation_error"),
    ({"host": "smtp.example.com\r\nRCPT TO:x", "sender": "a@example.com"}, "$.host", "validation_error"),
])
async def test_a_bad_smtp_server_is_refused(client, tenant, body, field, code):
    r = await client.put("/v1/alerts/smtp", json=body, headers=tenant.headers)
    assert r.status_code == 422 and r.json()["field"] == field and r.json()["code"] == code, r.text


async def test_a_recipient_that_could_add_a_header_is_refused(client, tenant):
    r = await client.post("/v1/alerts/channels", json={"name": "m", "kind": "email",
                                                       "recipients": ["ok@example.com", "x@example.com\nBcc: y@z"]},
                          headers=tenant.headers)
    assert r.status_code == 422 and r.json()["field"] == "$.recipients[1]", r.text


# -- tenants ---------------------------------------------------------------------------------------


async def test_deliveries_and_smtp_settings_are_the_tenants_own(client, state, worker, make_tenant, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_ALERTS_HOSTS", LOOPBACK)
    a, b = await make_tenant(), await make_tenant()
    async with receiver() as hook:
        await webhook_to(client, a, hook.url)
        alert = await raise_one(state, a)
        await raise_one(state, b)  # B has no channel: nothing is sent for it
        await worker()
    assert len(hook.calls) == 1 and hook.calls[0]["body"]["alert"]["id"] == str(alert.id)
    (d,) = await deliveries(client, a)
    assert await deliveries(client, b) == []
    assert await deliveries(client, b, alert_id=str(alert.id)) == []
    assert (await client.get(f"/v1/alerts/deliveries/{d['id']}", headers=b.headers)).status_code == 404
    await client.put("/v1/alerts/smtp", json={"host": "127.0.0.1", "port": 2525, "sender": "a@example.com"},
                     headers=a.headers)
    assert (await client.get("/v1/alerts/smtp", headers=a.headers)).json()["host"] == "127.0.0.1"
    assert (await client.get("/v1/alerts/smtp", headers=b.headers)).json() == {
        "configured": False, "host": None, "port": None, "security": None, "sender": None, "username": None,
        "password_set": False}
    assert (await client.delete("/v1/alerts/smtp", headers=b.headers)).status_code == 204  # nothing of A's
    assert (await client.get("/v1/alerts/smtp", headers=a.headers)).json()["configured"] is True
    # A job B queues for A's delivery finds nothing to do.
    r = await client.post("/v1/jobs", json={"name": "core.deliver_alert", "payload": {"delivery_id": d["id"],
                                                                                      "attempt": 5}},
                          headers=b.headers)
    assert r.status_code == 202
    await worker()
    job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=b.headers)).json()
    assert job["result"] == {"skipped": True}
    assert (await deliveries(client, a))[0]["attempts"] == 1
