"""`Client`: events from any thread, sent in batches by one background thread."""

from __future__ import annotations

import atexit
import logging
import os
import threading
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
from flywheel_sdk._http import Delivery, deliver_sync
from flywheel_sdk._options import OnRejected, Options

log = logging.getLogger("flywheel_sdk")


class Client:
    """Send events to Flywheel from any thread; a background thread sends them in batches.

    ``send()`` returns at once (unless the buffer is full and on_full="block").
    Batches go out when `batch_size` events wait or the oldest waited
    `flush_interval` seconds. ``close()`` (also at interpreter exit, and
    leaving a ``with`` block) sends what waits; what cannot be sent goes to
    `buffer_path` when one is set, and is sent by the next client on that folder.
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
        self._http = httpx.Client(**self._options.http_options())
        self._cond = threading.Condition()
        self._aborted = threading.Event()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="flywheel-sdk", daemon=True)
        self._worker.start()
        atexit.register(self.close)

    # -- the API ---------------------------------------------------------------------

    def send(self, event: Mapping[str, Any] | msgspec.Struct) -> str:
        """Queue one event (a dict with a "type", or an event Struct); its event_id."""
        data, event_id = encode_event(event)
        self._options.check_size(data)
        with self._cond:
            if self._admit():
                if self._pipeline.add(data, time.monotonic()):
                    self._cond.notify_all()
        return event_id

    def feedback(self, interaction_id: UUID | str, *, thumbs: str | None = None, rating: int | None = None,
                 corrected_text: str | None = None, compare_with: UUID | str | None = None,
                 preferred: str | None = None, comment: str | None = None, **envelope: Any) -> str:
        """Send `rlaas.feedback` on an interaction (its X-Flywheel-Interaction-Id); the event_id.

        Exactly one signal: thumbs="up"|"down", rating=1..5, corrected_text="..." (the
        answer as the user fixed it), or compare_with=<other interaction id> with
        preferred="this"|"other"|"tie". `envelope`: subject_id, session_id, attributes, event_id, ts.
        """
        return self.send(feedback_event(interaction_id, thumbs=thumbs, rating=rating, corrected_text=corrected_text,
                                          compare_with=compare_with, preferred=preferred, comment=comment,
                                          **envelope))

    def task_result(self, interaction_id: UUID | str, task: str, outcome: str, score: float | None = None,
                    details: Mapping[str, Any] | None = None, **envelope: Any) -> str:
        """Send `rlaas.task_result`: outcome is success, failure, partial or abandoned."""
        return self.send(task_result_event(interaction_id, task, outcome, score=score, details=details, **envelope))

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything that waits now; True once all of it was acknowledged (or rejected).

        False when the server is unavailable (what waits stays buffered) or
        `timeout` passed first.
        """
        self._not_from_worker("flush")
        with self._cond:
            mark = self._pipeline.flush(time.monotonic())
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._pipeline.idle() or self._pipeline.gave_up != mark
                                or not self._worker.is_alive(), timeout)
            return self._pipeline.idle()

    def close(self, timeout: float | None = None) -> None:
        """Send what waits (up to `timeout`, default close_timeout) and stop; what is left goes to buffer_path."""
        self._not_from_worker("close")
        with self._cond:
            if self._closed:
                return
            self._closed = self._pipeline.closing = True
            self._cond.notify_all()
        atexit.unregister(self.close)
        self._worker.join(self._options.close_timeout if timeout is None else timeout)
        if self._worker.is_alive():  # stop retrying; an HTTP request under way ends within `timeout`
            with self._cond:
                self._pipeline.aborting = True
                self._cond.notify_all()
            self._aborted.set()
            self._worker.join(self._options.timeout + 1)
        with self._cond:
            keep(self._pipeline, self._pipeline.leftovers())
        self._http.close()
        if self._pipeline.store is not None:
            self._pipeline.store.close()

    @property
    def stats(self) -> Stats:
        with self._cond:
            return self._pipeline.stats()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- callers' side -----------------------------------------------------------------

    def _not_from_worker(self, name: str) -> None:
        if threading.current_thread() is self._worker:  # it would wait for itself
            raise RuntimeError(f"{name}() cannot be called from on_rejected (the client's own thread)")

    def _admit(self) -> bool:
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
            self._cond.wait(remaining)

    # -- the worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                step = self._pipeline.next_step(time.monotonic())
                if isinstance(step, Wait):
                    self._cond.wait(step.seconds)
                    continue
                if step is EXIT:
                    self._cond.notify_all()
                    return
            try:
                rejections = self._spill(step) if isinstance(step, Spill) else self._deliver(step)
            except Exception as exc:  # a bug or a disk error must not stop the worker: keep the batch
                log.exception("Flywheel client worker step failed")
                rejections = self._recover(step, exc)
            self._options.report(rejections)

    def _deliver(self, step: Send) -> list:
        batch, store = step.batch, self._pipeline.store
        body = batch.body if batch.body is not None else store.read(batch.stored.path)
        if body is None:
            with self._cond:
                self._pipeline.vanished(batch)
                self._cond.notify_all()
            return []
        delivery = deliver_sync(self._http, body, batch.key, self._pipeline.policy, step.retries, self._aborted)
        if delivery.kind == "too_large" and batch.count > 1:
            halves = split_batch(batch, body, store)
            with self._cond:
                self._pipeline.replace(batch, halves)
            return []
        with self._cond:
            rejections = self._pipeline.finish(batch, body, delivery, time.monotonic())
            self._cond.notify_all()
        return rejections

    def _spill(self, step: Spill) -> list:
        for batch in step.batches:
            stored = write_batch(self._pipeline.store, batch)
            with self._cond:
                self._pipeline.spilled(batch, stored)
        with self._cond:
            self._cond.notify_all()
        return []

    def _recover(self, step: Send | Spill, exc: Exception) -> list:
        with self._cond:
            if isinstance(step, Send):
                failed = Delivery("unavailable", message=f"{type(exc).__name__}: {exc}")
                self._pipeline.finish(step.batch, b"", failed, time.monotonic())
            else:
                for batch in step.batches:
                    if batch.busy:
                        self._pipeline.spilled(batch, None)
            self._cond.notify_all()
        return []

