"""`AsyncClient`: the same pipeline driven by an asyncio task."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
import os
import time
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import httpx
import msgspec

from flywheel_sdk._core import (
    EXIT,
    ROOM,
    BufferFull,
    ClientClosed,
    Send,
    Spill,
    Stats,
    Wait,
    keep,
    split_batch,
    write_batch,
)
from flywheel_sdk._events import encode_event, feedback_event, task_result_event
from flywheel_sdk._http import Delivery, deliver_async
from flywheel_sdk._options import OnRejected, Options

log = logging.getLogger("flywheel_sdk")


class AsyncClient:
    """`Client` for asyncio: ``async with AsyncClient(...) as fw: await fw.send(...)``.

    A task on the event loop that first uses the client sends the batches
    (file writes run in a thread). Close it with ``await aclose()`` or by
    leaving the ``async with`` block: an async close cannot run at interpreter
    exit, so an unclosed client only writes what waits to `buffer_path` then
    (without sending it).
    """

    def __init__(self, base_url: str, api_key: str, *, batch_size: int = 500, flush_interval: float = 1.0,
                 max_batch_bytes: int = 1 << 20, buffer_path: str | os.PathLike[str] | None = None,
                 max_buffer_events: int = 100_000, on_full: str = "drop_oldest", block_timeout: float | None = None,
                 timeout: float = 10.0, max_retries: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
                 close_timeout: float = 10.0, on_rejected: OnRejected | None = None) -> None:
        self._options = Options(base_url, api_key, batch_size, flush_interval, max_batch_bytes, buffer_path,
                                max_buffer_events, on_full, block_timeout, timeout, max_retries, backoff,
                                max_backoff, close_timeout, on_rejected)
        self._pipeline = self._options.pipeline()
        self._http = httpx.AsyncClient(**self._options.http_options())
        self._changed = asyncio.Event()
        self._aborted = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        atexit.register(self._keep_at_exit)

    # -- the API ---------------------------------------------------------------------

    async def send(self, event: Mapping[str, Any] | msgspec.Struct) -> str:
        """Queue one event (a dict with a "type", or an event Struct); its event_id."""
        data, event_id = encode_event(event)
        self._options.check_size(data)
        self._start()
        if await self._admit():
            if self._pipeline.add(data, time.monotonic()):
                self._notify()
        return event_id

    async def feedback(self, interaction_id: UUID | str, *, thumbs: str | None = None, rating: int | None = None,
                       corrected_text: str | None = None, compare_with: UUID | str | None = None,
                       preferred: str | None = None, comment: str | None = None, **envelope: Any) -> str:
        """Send `rlaas.feedback` on an interaction (its X-Flywheel-Interaction-Id); the event_id.

        Exactly one signal: thumbs="up"|"down", rating=1..5, corrected_text="..." (the
        answer as the user fixed it), or compare_with=<other interaction id> with
        preferred="this"|"other"|"tie". `envelope`: subject_id, session_id, attributes, event_id, ts.
        """
        event = feedback_event(interaction_id, thumbs=thumbs, rating=rating, corrected_text=corrected_text,
                               compare_with=compare_with, preferred=preferred, comment=comment, **envelope)
        return await self.send(event)

    async def task_result(self, interaction_id: UUID | str, task: str, outcome: str, score: float | None = None,
                          details: Mapping[str, Any] | None = None, **envelope: Any) -> str:
        """Send `rlaas.task_result` (see `Client.task_result`)."""
        return await self.send(task_result_event(interaction_id, task, outcome, score=score, details=details,
                                                 **envelope))

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything that waits now; True once all of it was acknowledged (see `Client.flush`)."""
        self._not_from_worker("flush")
        self._start()
        if self._task is None:  # closed
            return self._pipeline.idle()
        mark = self._pipeline.flush(time.monotonic())
        self._notify()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._pipeline.idle() or self._pipeline.gave_up != mark or self._task.done()):
            remaining = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or not await self._wait_change(remaining):
                break
        return self._pipeline.idle()

    async def aclose(self, timeout: float | None = None) -> None:
        """Send what waits (up to `timeout`, default close_timeout) and stop; what is left goes to buffer_path."""
        self._not_from_worker("aclose")
        if self._closed:
            return
        self._closed = self._pipeline.closing = True
        atexit.unregister(self._keep_at_exit)
        self._notify()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=self._options.close_timeout if timeout is None else timeout)
            if not self._task.done():  # stop retrying; an HTTP request under way ends within `timeout`
                self._pipeline.aborting = True
                self._aborted.set()
                self._notify()
                await asyncio.wait({self._task}, timeout=self._options.timeout + 1)
            if not self._task.done():
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.to_thread(keep, self._pipeline, self._pipeline.leftovers())
        await self._http.aclose()
        if self._pipeline.store is not None:
            self._pipeline.store.close()

    @property
    def stats(self) -> Stats:
        return self._pipeline.stats()

    async def __aenter__(self) -> AsyncClient:
        self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- callers' side -----------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="flywheel-sdk")

    def _not_from_worker(self, name: str) -> None:
        if self._task is not None and asyncio.current_task() is self._task:  # it would wait for itself
            raise RuntimeError(f"{name}() cannot be awaited in on_rejected (the client's own task)")

    def _notify(self) -> None:
        # A broadcast: everyone waiting on the old event wakes; later waiters get a new one.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, timeout: float | None) -> bool:
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except asyncio.TimeoutError:  # not the builtin: on Python 3.10 they differ
            return False
        return True

    async def _admit(self) -> bool:
        """Wait for room as on_full says; False when the new event itself was dropped."""
        options = self._options
        deadline = None if options.block_timeout is None else time.monotonic() + options.block_timeout
        while True:
            if self._closed:
                raise ClientClosed("the Flywheel client is closed")
            verdict = self._pipeline.room()
            if verdict != "full":
                return verdict == ROOM
            remaining = None if deadline is None else deadline - time.monotonic()
            if options.on_full == "raise" or (remaining is not None and remaining <= 0):
                raise BufferFull(f"{self._pipeline.buffered} events wait for Flywheel "
                                 f"(max_buffer_events={options.max_buffer_events})")
            await self._wait_change(remaining)

    # -- the worker task -----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            step = self._pipeline.next_step(time.monotonic())
            if isinstance(step, Wait):
                await self._wait_change(step.seconds)
                continue
            if step is EXIT:
                self._notify()
                return
            try:
                rejections = await (self._spill(step) if isinstance(step, Spill) else self._deliver(step))
            except Exception as exc:  # a bug or a disk error must not stop the worker: keep the batch
                log.exception("Flywheel client worker step failed")
                rejections = self._recover(step, exc)
            self._notify()
            reported = self._options.report(rejections)
            if inspect.isawaitable(reported):
                try:
                    await reported
                except Exception:
                    log.exception("on_rejected raised")

    async def _deliver(self, step: Send) -> list:
        batch, store = step.batch, self._pipeline.store
        body = batch.body if batch.body is not None else await asyncio.to_thread(store.read, batch.stored.path)
        if body is None:
            self._pipeline.vanished(batch)
            return []
        delivery = await deliver_async(self._http, body, batch.key, self._pipeline.policy, step.retries,
                                       self._aborted)
        if delivery.kind == "too_large" and batch.count > 1:
            self._pipeline.replace(batch, await asyncio.to_thread(split_batch, batch, body, store))
            return []
        return self._pipeline.finish(batch, body, delivery, time.monotonic())

    async def _spill(self, step: Spill) -> list:
        for batch in step.batches:
            self._pipeline.spilled(batch, await asyncio.to_thread(write_batch, self._pipeline.store, batch))
        return []

    def _recover(self, step: Send | Spill, exc: Exception) -> list:
        if isinstance(step, Send):
            failed = Delivery("unavailable", message=f"{type(exc).__name__}: {exc}")
            self._pipeline.finish(step.batch, b"", failed, time.monotonic())
        else:
            for batch in step.batches:
                if batch.busy:
                    self._pipeline.spilled(batch, None)
        return []

    def _keep_at_exit(self) -> None:
        if self._closed:
            return
        self._closed = True
        leftovers = self._pipeline.leftovers()
        if leftovers:
            log.warning("AsyncClient was not closed: %d events %s", sum(b.count for b in leftovers),
                        "written to the buffer folder" if self._pipeline.store else "lost (no buffer_path)")
        keep(self._pipeline, leftovers)
        if self._pipeline.store is not None:
            self._pipeline.store.close()

