"""`/v1/alerts/rules`, `/v1/alerts/channels`, `/v1/alerts/smtp`, `/v1/alerts/conditions`:
what a tenant keeps and where it goes. Reading needs `read`; changing needs `admin`
(channels send the tenant's data out, and a webhook's secret is shown to its creator)."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from flywheel.server.alerts import channels, rules, smtp_config
from flywheel.server.alerts.conditions import alert_conditions
from flywheel.server.auth.principal import Caller

ADMIN = {"scope": "admin"}


class ConditionRead(msgspec.Struct, kw_only=True):
    name: str
    plugin: str
    description: str
    severity: str
    auto_resolve: bool


class AlertConfigController(Controller):
    path = "/v1/alerts"
    tags = ["alerts"]

    @get("/conditions", operation_id="listAlertConditions")
    async def conditions(self, state: State, principal: Caller) -> list[ConditionRead]:
        """The conditions plugins register, evaluated hourly for every tenant (`core.evaluate_alerts`)."""
        return [ConditionRead(name=name, plugin=plugin, description=c.description, severity=c.severity,
                              auto_resolve=c.auto_resolve)
                for name, (plugin, c) in sorted(alert_conditions(state.flywheel).items())]

    # -- rules --

    @get("/rules", operation_id="listAlertRules")
    async def list_rules(self, state: State, principal: Caller) -> list[rules.RuleRead]:
        """The tenant's rules, by match."""
        return await rules.list_rules(state.flywheel, principal.tenant_id)

    @post("/rules", operation_id="createAlertRule", opt=ADMIN, status_code=201)
    async def create_rule(self, state: State, principal: Caller, data: JSONBody[rules.RuleCreate]) -> rules.RuleRead:
        """A rule for alerts whose name is `match` (`drives.top_risk_band`), starts with it (`drives.*`), or all
        (`*`): kept or not, the minimum severity kept, the channels told, auto-resolve."""
        return await rules.create_rule(state.flywheel, principal.tenant_id, data)

    @get("/rules/{rule_id:uuid}", operation_id="getAlertRule")
    async def get_rule(self, state: State, principal: Caller, rule_id: FromPath[UUID]) -> rules.RuleRead:
        """One rule."""
        return await rules.get_rule(state.flywheel, principal.tenant_id, rule_id)

    @patch("/rules/{rule_id:uuid}", operation_id="updateAlertRule", opt=ADMIN)
    async def update_rule(self, state: State, principal: Caller, rule_id: FromPath[UUID],
                          data: JSONBody[rules.RuleUpdate]) -> rules.RuleRead:
        """Change a rule (fields left out stay as they are)."""
        return await rules.update_rule(state.flywheel, principal.tenant_id, rule_id, data)

    @delete("/rules/{rule_id:uuid}", operation_id="deleteAlertRule", opt=ADMIN, status_code=204)
    async def delete_rule(self, state: State, principal: Caller, rule_id: FromPath[UUID]) -> None:
        """Delete a rule."""
        await rules.delete_rule(state.flywheel, principal.tenant_id, rule_id)

    # -- channels --

    @get("/channels", operation_id="listAlertChannels")
    async def list_channels(self, state: State, principal: Caller) -> list[channels.ChannelRead]:
        """The tenant's channels, by name (never their secrets)."""
        return await channels.list_channels(state.flywheel, principal.tenant_id)

    @post("/channels", operation_id="createAlertChannel", opt=ADMIN, status_code=201)
    async def create_channel(self, state: State, principal: Caller,
                             data: JSONBody[channels.ChannelCreate]) -> channels.ChannelRead:
        """A webhook (`url`; the answer holds its signing `secret`, shown this once) or an e-mail channel
        (`recipients`, sent through the tenant's SMTP server). URLs pass FLYWHEEL_ALERTS_HOSTS."""
        return await channels.create_channel(state.flywheel, principal.tenant_id, data)

    @get("/channels/{channel_id:uuid}", operation_id="getAlertChannel")
    async def get_channel(self, state: State, principal: Caller, channel_id: FromPath[UUID]) -> channels.ChannelRead:
        """One channel."""
        return await channels.get_channel(state.flywheel, principal.tenant_id, channel_id)

    @patch("/channels/{channel_id:uuid}", operation_id="updateAlertChannel", opt=ADMIN)
    async def update_channel(self, state: State, principal: Caller, channel_id: FromPath[UUID],
                             data: JSONBody[channels.ChannelUpdate]) -> channels.ChannelRead:
        """Rename, re-point, enable or disable a channel."""
        return await channels.update_channel(state.flywheel, principal.tenant_id, channel_id, data)

    @post("/channels/{channel_id:uuid}/rotate-secret", operation_id="rotateAlertChannelSecret", opt=ADMIN,
          status_code=200)
    async def rotate(self, state: State, principal: Caller, channel_id: FromPath[UUID]) -> channels.ChannelRead:
        """A new signing secret for a webhook, in this answer only; the old one stops signing at once."""
        return await channels.rotate_secret(state.flywheel, principal.tenant_id, channel_id)

    @delete("/channels/{channel_id:uuid}", operation_id="deleteAlertChannel", opt=ADMIN, status_code=204)
    async def delete_channel(self, state: State, principal: Caller, channel_id: FromPath[UUID]) -> None:
        """Delete a channel with its delivery log; rules stop naming it."""
        await channels.delete_channel(state.flywheel, principal.tenant_id, channel_id)

    # -- the SMTP server --

    @get("/smtp", operation_id="getAlertSmtp")
    async def get_smtp(self, state: State, principal: Caller) -> smtp_config.SmtpSettingsRead:
        """The tenant's SMTP server for e-mail channels (`configured: false` until one is set; the password
        is never shown)."""
        return await smtp_config.get_smtp(state.flywheel, principal.tenant_id)

    @put("/smtp", operation_id="putAlertSmtp", opt=ADMIN)
    async def put_smtp(self, state: State, principal: Caller,
                       data: JSONBody[smtp_config.SmtpSettingsWrite]) -> smtp_config.SmtpSettingsRead:
        """Set the SMTP server: host (FLYWHEEL_ALERTS_HOSTS), port, security (starttls, tls, none), sender,
        and optionally a username and password (stored encrypted)."""
        return await smtp_config.put_smtp(state.flywheel, principal.tenant_id, data)

    @delete("/smtp", operation_id="deleteAlertSmtp", opt=ADMIN, status_code=204)
    async def delete_smtp(self, state: State, principal: Caller) -> None:
        """Forget the SMTP server (e-mail deliveries then fail, saying so)."""
        await smtp_config.delete_smtp(state.flywheel, principal.tenant_id)


