"""Plugins' alert conditions (`register_alert_conditions`), evaluated tenant by tenant.

The cron job `core.evaluate_alerts` asks every condition, for every tenant,
what it finds now; each finding raises (or repeats) the alert (condition
name, finding key). With auto-resolve (the condition's default, or the
tenant's rule), an open alert of the condition whose key is no longer found
is resolved by "auto". A tenant whose rule disables a condition is not
evaluated for it. One condition failing for one tenant is logged and
counted; the others still run.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog

from flywheel.server.alerts.contracts import SEVERITY_RANK, AlertCondition, Finding
from flywheel.server.alerts.lifecycle import resolve_cleared
from flywheel.server.alerts.matching import RULE_NAME, rule_for
from flywheel.server.alerts.raise_alert import raise_governed
from flywheel.server.hooks import call_hook_sync

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.alerts")
HOOK = "register_alert_conditions"
# Collected once per plugin manager (an app has one), on first use.
_COLLECTED: weakref.WeakKeyDictionary[Any, dict[str, tuple[str, AlertCondition]]] = weakref.WeakKeyDictionary()


class ConditionError(Exception):
    """A plugin registered an invalid or duplicate alert condition."""


def _check(found: dict[str, tuple[str, AlertCondition]], plugin: str, item: Any) -> None:
    if not isinstance(item, AlertCondition):
        raise ConditionError(f"plugin {plugin!r} returned {type(item).__name__} from {HOOK}, not an AlertCondition")
    if not RULE_NAME.match(item.name) or not item.name.startswith(f"{plugin}."):
        raise ConditionError(f"plugin {plugin!r} registers alert condition {item.name!r}: name it "
                             f"{plugin}.<condition> (lowercase)")
    if item.severity not in SEVERITY_RANK:
        raise ConditionError(f"alert condition {item.name!r} has severity {item.severity!r}")
    if item.name in found:
        raise ConditionError(f"alert condition {item.name!r} is registered twice")


def alert_conditions(state: AppState) -> dict[str, tuple[str, AlertCondition]]:
    """Every registered condition by name, with the plugin that registered it."""
    found = _COLLECTED.get(state.pm)
    if found is None:
        found = {}
        for plugin, items in call_hook_sync(state.pm, HOOK):
            for item in items or []:
                _check(found, plugin, item)
                found[item.name] = (plugin, item)
        _COLLECTED[state.pm] = found
    return found


async def _raise_findings(state: AppState, tenant_id: UUID, condition: AlertCondition, rule: dict[str, Any] | None,
                          findings: list[Finding]) -> int:
    raised = 0
    for f in findings:
        alert = await raise_governed(state, tenant_id, rule, rule=condition.name, key=f.key,
                                     severity=f.severity or condition.severity, title=f.title, details=f.details)
        raised += alert is not None
    return raised


async def evaluate_condition(state: AppState, tenant_id: UUID, condition: AlertCondition) -> dict[str, int]:
    """Evaluate one condition for one tenant: raise what it finds, resolve what cleared."""
    rule = await rule_for(state.db, tenant_id, condition.name)
    if rule is not None and not rule["enabled"]:
        return {"found": 0, "raised": 0, "resolved": 0}
    findings = await condition.evaluate(state, tenant_id)
    raised = await _raise_findings(state, tenant_id, condition, rule, findings)
    auto = condition.auto_resolve if rule is None or rule["auto_resolve"] is None else rule["auto_resolve"]
    resolved = await resolve_cleared(state, tenant_id, condition.name, {f.key for f in findings}) if auto else []
    return {"found": len(findings), "raised": raised, "resolved": len(resolved)}


async def evaluate_tenant(state: AppState, tenant_id: UUID) -> dict[str, Any]:
    """Every condition for one tenant; a failing one is logged and listed under `failed`."""
    totals: dict[str, Any] = {"found": 0, "raised": 0, "resolved": 0, "failed": []}
    for name, (plugin, condition) in alert_conditions(state).items():
        try:
            counts = await evaluate_condition(state, tenant_id, condition)
        except Exception:
            log.exception("alert condition failed", condition=name, plugin=plugin, tenant_id=str(tenant_id))
            totals["failed"].append(name)
            continue
        for key, value in counts.items():
            totals[key] += value
    return totals
