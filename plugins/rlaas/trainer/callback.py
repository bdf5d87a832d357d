"""A transformers `TrainerCallback` that reports each step and stops training when told to.

It runs on the training thread. `report(step, total, loss)` is called once a
step, when the step's loss is logged (`logging_steps=1`); it returns False to
stop: the job was cancelled. Training then ends after the current step, and
the trainer's result says it was stopped, so nothing of it is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from transformers import TrainerCallback

Report = Callable[[int, int, float], bool]
HISTORY_MAX = 1000  # loss points kept for the metrics (every other one dropped past that)


class JobProgressCallback(TrainerCallback):
    def __init__(self, report: Report) -> None:
        self.report = report
        self.stopped = False
        self.losses: list[tuple[int, float]] = []
        self.step_seconds: list[float] = []
        self._every = 1
        self._began = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        # Loading and tokenizing may take a while: a job cancelled meanwhile stops before the first step.
        if not self.report(0, state.max_steps, float("nan")):
            self._stop(control)

    def on_step_begin(self, args, state, control, **kwargs):
        self._began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.perf_counter() - self._began)

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        self._keep(state.global_step, float(loss))
        if not self.report(state.global_step, state.max_steps, float(loss)):
            self._stop(control)

    def _stop(self, control) -> None:
        self.stopped = True
        control.should_training_stop = True

    def _keep(self, step: int, loss: float) -> None:
        if step % self._every == 0:
            self.losses.append((step, loss))
        if len(self.losses) > HISTORY_MAX:  # halve the resolution rather than grow without bound
            self._every *= 2
            self.losses = [p for p in self.losses if p[0] % self._every == 0]
