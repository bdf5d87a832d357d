"""The one helper that calls hooks: per implementation, awaited, traced, named.

pluggy has no async support and its hook call hides which plugin returned
what, so Flywheel calls each implementation itself, in pluggy's order. This
gives one tracing span per implementation and lets every error name the
plugin at fault.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import time
from typing import Any

import pluggy
import structlog
from opentelemetry import trace

log = structlog.get_logger("flywheel.hooks")
tracer = trace.get_tracer("flywheel.hooks")


class HookError(Exception):
    """A hook implementation failed; names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in hook {hook}: {type(error).__name__}: {error}")
        self.plugin = plugin
        self.hook = hook


def implementations(pm: pluggy.PluginManager, hook_name: str) -> list[Any]:
    # pluggy calls the last-registered implementation first (tryfirst/trylast aside).
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def _call(impl: Any, kwargs: dict[str, Any]) -> Any:
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


async def call_hook(
    pm: pluggy.PluginManager, hook_name: str, *, isolate: bool = False, trace_calls: bool = False,
    **kwargs: Any,
) -> list[tuple[str, Any]]:
    """Call every implementation of `hook_name`, awaiting async ones.

    Returns ``(plugin_name, result)`` pairs, skipping None results. With
    `isolate`, a failing implementation is logged and skipped (notification
    hooks); otherwise it raises `HookError`.
    """
    results = []
    for impl in implementations(pm, hook_name):
        ok, value = await call_impl(impl, hook_name, kwargs, isolate=isolate, trace_calls=trace_calls)
        if ok and value is not None:
            results.append((impl.plugin_name, value))
    return results


async def call_impl(impl: Any, hook_name: str, kwargs: dict[str, Any], *, isolate: bool = False,
                    trace_calls: bool = False) -> tuple[bool, Any]:
    """Call one implementation as `call_hook` does; (False, None) when it failed under `isolate`."""
    with tracer.start_as_current_span(f"hook {hook_name}", attributes={"flywheel.plugin": impl.plugin_name}):
        started = time.perf_counter()
        try:
            value = _call(impl, kwargs)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            if not isolate:
                raise HookError(impl.plugin_name, hook_name, exc) from exc
            log.exception("hook failed", hook=hook_name, plugin=impl.plugin_name)
            return False, None
        finally:
            if trace_calls:
                log.info("hook call", hook=hook_name, plugin=impl.plugin_name,
                         ms=round((time.perf_counter() - started) * 1000, 3))
    return True, value


def call_hook_sync(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """`call_hook` for startup code that is not async (building the app, the CLI).

    Async implementations still work: they run on a private event loop, in a
    helper thread when the caller is itself inside a running loop.
    """
    coro = call_hook(pm, hook_name, **kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
