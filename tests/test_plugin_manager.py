"""Loading plugins and validating what they contribute, without a database."""

from __future__ import annotations

import types

import click
import msgspec
import pytest
from litestar import get

from flywheel.contracts.events import Event
from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.server import hookimpl
from flywheel.server.app import build_state
from flywheel.server.contributions import ContributionError
from flywheel.server.hooks import HookError, call_hook
from flywheel.server.plugin_manager import PluginLoadError, create_plugin_manager
from flywheel.server.settings import load_settings


def plugin(name: str, version: str = "1.0", **hooks) -> types.SimpleNamespace:
    """A plugin object with the given hook implementations."""
    ns = types.SimpleNamespace(__flywheel_plugin_name__=name, __version__=version)
    for hook, fn in hooks.items():
        setattr(ns, hook, hookimpl(fn))
    return ns


async def job(ctx):
    return None


@get("/v1/thing", sync_to_thread=False)
def thing() -> dict:
    return {}


def settings():
    return load_settings({})


def test_duplicate_routes_name_both_plugins():
    a = plugin("alpha", "1.2", register_routes=lambda: [thing])
    b = plugin("beta", "3.4", register_routes=lambda: [thing])
    with pytest.raises(ContributionError) as err:
        build_state(settings(), [a, b])
    assert "GET /v1/thing" in str(err.value)
    assert "'alpha' 1.2" in str(err.value) and "'beta' 3.4" in str(err.value)


def test_plugin_route_may_not_shadow_a_core_route():
    @get("/v1/plugins", sync_to_thread=False)
    def shadow() -> dict:
        return {}

    with pytest.raises(ContributionError, match="the core and plugin 'alpha'"):
        build_state(settings(), [plugin("alpha", register_routes=lambda: [shadow])])


def test_duplicate_job_names_and_namespacing():
    a = plugin("alpha", register_jobs=lambda: [JobSpec(name="alpha.run", func=job)])
    b = plugin("beta", register_jobs=lambda: [JobSpec(name="alpha.run", func=job)])
    with pytest.raises(ContributionError, match="must be namespaced as 'beta.<name>'"):
        build_state(settings(), [a, b])
    c = plugin("alpha2", register_jobs=lambda: [JobSpec(name="alpha2.run", func=job),
                                                JobSpec(name="alpha2.run", func=job)])
    with pytest.raises(ContributionError, match="job 'alpha2.run' is registered by both"):
        build_state(settings(), [c])


def test_event_types_are_validated():
    class Good(Event, tag="alpha.seen"):
        x: int = 0

    class Other(Event, tag="alpha.seen"):
        pass

    class NotEvent(msgspec.Struct):
        pass

    state = build_state(settings(), [plugin("alpha", register_event_types=lambda: [Good])])
    assert state.contributions.event_types["alpha.seen"] == ("alpha", Good)
    with pytest.raises(ContributionError, match="event type 'alpha.seen' is registered by both"):
        build_state(settings(), [plugin("alpha", register_event_types=lambda: [Good, Other])])
    with pytest.raises(ContributionError, match="not a tagged Event subclass"):
        build_state(settings(), [plugin("alpha", register_event_types=lambda: [NotEvent])])


def test_cron_must_name_a_registered_job():
    p = plugin("alpha", register_cron_jobs=lambda: [CronSpec(name="alpha.tick", job="alpha.missing")])
    with pytest.raises(ContributionError, match="unknown job 'alpha.missing'"):
        build_state(settings(), [p])


def test_register_hook_must_return_a_list_and_names_the_plugin():
    with pytest.raises(ContributionError, match="plugin 'alpha' 1.0: register_jobs must return a list"):
        build_state(settings(), [plugin("alpha", register_jobs=lambda: JobSpec(name="alpha.x", func=job))])


def test_failing_register_hook_names_the_plugin():
    def boom():
        raise RuntimeError("kaput")

    with pytest.raises(HookError, match="plugin 'alpha' failed in hook register_routes: RuntimeError: kaput"):
        build_state(settings(), [plugin("alpha", register_routes=boom)])


def test_async_register_hooks_are_awaited():
    async def jobs():
        return [JobSpec(name="alpha.async_job", func=job)]

    state = build_state(settings(), [plugin("alpha", register_jobs=jobs)])
    assert "alpha.async_job" in state.contributions.jobs


async def test_async_register_hooks_work_inside_a_running_loop():
    async def jobs():
        return [JobSpec(name="alpha.async_job", func=job)]

    state = build_state(settings(), [plugin("alpha", register_jobs=jobs)])
    assert "alpha.async_job" in state.contributions.jobs


def test_cli_command_may_not_replace_a_core_command():
    @click.command(name="migrate")
    def migrate():
        pass

    with pytest.raises(ContributionError, match="'migrate', a core command"):
        build_state(settings(), [plugin("alpha", register_cli_commands=lambda: [migrate])])


def test_unknown_hook_is_refused_at_load():
    bad = plugin("alpha", register_widgets=lambda: [])
    with pytest.raises(Exception, match="register_widgets"):
        create_plugin_manager([bad])


def test_allow_list_names_missing_plugins():
    with pytest.raises(PluginLoadError, match="not installed: nosuchplugin"):
        create_plugin_manager(load_entrypoints=True, allow=["nosuchplugin"])


def test_allow_list_restricts_entry_points():
    pm = create_plugin_manager(load_entrypoints=True, allow=[])
    assert pm.describe() == []


def test_entry_point_plugins_are_loaded_and_described():
    pm = create_plugin_manager(load_entrypoints=True)
    described = {p.name: p for p in pm.describe()}
    assert "example" in described, "the example plugin must be pip-installed (make test does it)"
    example = described["example"]
    assert example.version == "0.1.0"
    assert not example.builtin
    assert {"register_routes", "register_jobs", "register_migrations", "register_cli_commands"} <= set(example.hooks)


async def test_notification_failures_are_isolated_and_startup_failures_raise(caplog):
    calls = []

    def good(state):
        calls.append("good")

    def bad(state):
        raise ValueError("nope")

    pm = create_plugin_manager([plugin("good", on_shutdown=good), plugin("bad", on_shutdown=bad)])
    results = await call_hook(pm, "on_shutdown", isolate=True, state=None)
    assert calls == ["good"] and results == []
    pm2 = create_plugin_manager([plugin("bad", on_startup=bad)])
    with pytest.raises(HookError, match="plugin 'bad' failed in hook on_startup"):
        await call_hook(pm2, "on_startup", state=None)


async def test_implementations_may_take_fewer_arguments():
    def no_args():
        return "ran"

    pm = create_plugin_manager([plugin("alpha", on_startup=no_args)])
    assert await call_hook(pm, "on_startup", state=object()) == [("alpha", "ran")]


async def test_hook_trace_switch_logs_each_call(capsys):
    import structlog

    structlog.configure(processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
                        logger_factory=structlog.PrintLoggerFactory())
    pm = create_plugin_manager([plugin("alpha", on_startup=lambda: None)])
    await call_hook(pm, "on_startup", trace_calls=True, state=None)
    out = capsys.readouterr().out
    assert "hook call" in out and "plugin='alpha'" in out and "hook='on_startup'" in out
    structlog.reset_defaults()
