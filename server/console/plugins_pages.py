"""The console's plugins page: each loaded plugin, its version, and what it adds, in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from litestar import Router, get
from litestar.datastructures import State
from litestar.response import Template

from flywheel.server.contributions import CORE, Contributions

# Hooks whose effect is not an item in `Contributions`, said the way an operator would.
HOOK_WORDS = {
    "register_scrubbers": "adds PII scrubbers to event ingestion",
    "register_migrations": "owns database tables (its own migrations)",
    "list_served_models": "serves models under the OpenAI-compatible API",
    "on_startup": "starts background work when the server starts",
    "on_shutdown": "cleans up when the server stops",
    "on_demo": "adds demo data to a demo tenant",
    "on_events_committed": "reacts to events as they are stored",
}


@dataclass
class PluginSummary:
    name: str
    version: str
    builtin: bool
    routes: list[str] = field(default_factory=list)
    jobs: list[tuple[str, str]] = field(default_factory=list)
    cron_jobs: list[str] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    pages: list[tuple[str, str]] = field(default_factory=list)
    model_families: list[str] = field(default_factory=list)
    cli_commands: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


@lru_cache(maxsize=512)
def route_list(handler: Any) -> tuple[str, ...]:
    """"GET /v1/drives/{serial}" for each route `handler` mounts (a probe router, as startup checks do)."""
    probe = Router(path="/", route_handlers=[handler])
    return tuple(f"{method} {route.path}" for route in probe.routes
                 for method in sorted(getattr(route, "methods", set()) - {"OPTIONS", "HEAD"}))


def summarise(pm: Any, c: Contributions) -> list[PluginSummary]:
    out = {p.name: PluginSummary(p.name, p.version, p.builtin) for p in pm.describe()}
    out[CORE] = PluginSummary("Flywheel itself", "", True)

    def of(plugin: str) -> PluginSummary:
        return out.setdefault(plugin, PluginSummary(plugin, "?", False))

    for plugin, handler in c.routes:
        of(plugin).routes += route_list(handler)
    for name, (plugin, spec) in sorted(c.jobs.items()):
        of(plugin).jobs.append((name, spec.description))
    for name, (plugin, spec) in sorted(c.cron_jobs.items()):
        of(plugin).cron_jobs.append(f"{spec.job} ({name})")
    for name, (plugin, _) in sorted(c.event_types.items()):
        of(plugin).event_types.append(name)
    for _, (plugin, page) in c.pages.items():
        if page.nav:
            of(plugin).pages.append((page.nav_title, f"/console{page.path}"))
    for name, (plugin, _) in sorted(c.model_families.items()):
        of(plugin).model_families.append(name)
    for name, (plugin, _) in sorted(c.cli_commands.items()):
        of(plugin).cli_commands.append(f"flywheel {name}")
    for p in pm.describe():
        out[p.name].other = [HOOK_WORDS[h] for h in p.hooks if h in HOOK_WORDS]
    core = out.pop(CORE)
    return [*sorted(out.values(), key=lambda s: s.name), core]


@get("/plugins", name="console:plugins")
async def plugins_page(state: State) -> Template:
    fw = state.flywheel
    return Template("console/plugins.html", context={"plugins": summarise(fw.pm, fw.contributions)})
