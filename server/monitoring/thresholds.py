"""Thresholds: the core's defaults, a family's own (the `monitoring_thresholds` hook), a tenant's overrides."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from flywheel.server.errors import InvalidInput
from flywheel.server.hooks import call_hook
from flywheel.server.monitoring.contracts import (
    LEVELS,
    Level,
    MonitoringThresholds,
    ThresholdsRead,
    ThresholdsUpdate,
)

if TYPE_CHECKING:
    from flywheel.server.state import AppState

_SELECT = """SELECT overrides, updated_by, updated_at FROM model_monitoring_thresholds
             WHERE tenant_id = $1 AND family = $2"""
_UPSERT = """INSERT INTO model_monitoring_thresholds (tenant_id, family, overrides, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, family) DO UPDATE
             SET overrides = EXCLUDED.overrides, updated_by = EXCLUDED.updated_by, updated_at = now()"""


class ThresholdError(ValueError):
    """A family's own defaults are invalid (a plugin's bug: the message names it)."""


def level(value: float | None, warn: float, alert: float) -> Level:
    if value is None:
        return "ok"
    return "alert" if value >= alert else "warn" if value >= warn else "ok"


def check_levels(t: MonitoringThresholds, given: frozenset[str] = frozenset()) -> None:
    """InvalidInput naming the first warning level above its alert level (the field of the two
    that was `given`, when only one was)."""
    for warn, alert in LEVELS:
        if getattr(t, warn) > getattr(t, alert):
            at_fault = alert if alert in given and warn not in given else warn
            raise InvalidInput(f"{warn} ({getattr(t, warn)}) is above {alert} ({getattr(t, alert)}): a warning "
                               "comes before the alert", field=f"$.{at_fault}", code="thresholds_out_of_order")


async def family_defaults(state: AppState, family: str) -> MonitoringThresholds:
    """The family's own defaults when the plugin that declares it gives some, else the core's."""
    owner = state.contributions.model_families[family][0]
    for plugin, value in await call_hook(state.pm, "monitoring_thresholds", family=family):
        if plugin != owner:
            continue  # only the family's own plugin speaks for it
        try:
            found = value if isinstance(value, MonitoringThresholds) else msgspec.convert(value, MonitoringThresholds)
            check_levels(found)
        except (msgspec.ValidationError, InvalidInput) as exc:
            raise ThresholdError(f"plugin {plugin!r} gives invalid monitoring thresholds for {family!r}: "
                                 f"{exc}") from None
        return found
    return MonitoringThresholds()


def apply(defaults: MonitoringThresholds, overrides: ThresholdsUpdate) -> MonitoringThresholds:
    changed = {k: v for k, v in msgspec.structs.asdict(overrides).items() if v is not None}
    return msgspec.structs.replace(defaults, **changed)


async def thresholds_read(state: AppState, tenant_id: UUID, family: str) -> ThresholdsRead:
    defaults = await family_defaults(state, family)
    row = await state.db.fetchrow(_SELECT, tenant_id, family)
    overrides = msgspec.convert(row["overrides"], ThresholdsUpdate) if row else ThresholdsUpdate()
    return ThresholdsRead(family=family, defaults=defaults, overrides=overrides, effective=apply(defaults, overrides),
                          updated_by=row["updated_by"] if row else None, updated_at=row["updated_at"] if row else None)


async def effective(state: AppState, tenant_id: UUID, family: str) -> MonitoringThresholds:
    return (await thresholds_read(state, tenant_id, family)).effective


async def set_overrides(state: AppState, tenant_id: UUID, family: str, update: ThresholdsUpdate,
                        *, by: str) -> ThresholdsRead:
    """Replace the tenant's overrides (422 when the result would warn above its alert level)."""
    defaults = await family_defaults(state, family)
    overrides: dict[str, Any] = msgspec.to_builtins(update)
    check_levels(apply(defaults, update), frozenset(overrides))
    await state.db.execute(_UPSERT, tenant_id, family, overrides, by[:200])
    return await thresholds_read(state, tenant_id, family)
