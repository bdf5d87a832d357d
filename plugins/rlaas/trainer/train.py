"""`train_lora`: fine-tune a LoRA adapter on a local JSONL file, with TRL and PEFT.

Synchronous and CPU- or GPU-bound: the job runs it on a thread of its own.
The file holds TRL's conversational rows, as rlaas exports write them: SFT
``{"messages": [...]}``, DPO ``{"prompt": [...], "chosen": [...],
"rejected": [...]}``; the base model's chat template turns them into tokens.
The result is PEFT's adapter folder (`adapter_config.json`,
`adapter_model.safetensors`), which `PeftModel.from_pretrained(base, folder)`
loads, and the run's metrics.
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Literal

import msgspec
import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

from flywheel.plugins.rlaas.trainer.callback import JobProgressCallback, Report
from flywheel.plugins.rlaas.trainer.config import TrainConfig

Kind = Literal["sft", "dpo"]
THREADS_ENV = "FLYWHEEL_RLAAS_TRAIN_THREADS"


class TrainResult(msgspec.Struct, kw_only=True):
    """What a run did. `stopped`: told to stop (cancelled) before the end; its adapter is not to be kept."""

    stopped: bool
    steps: int
    epochs: float
    rows: int
    device: str
    first_loss: float | None
    final_loss: float | None
    loss_history: list[tuple[int, float]]
    step_time_s: float | None  # median wall time of one optimizer step
    train_runtime_s: float
    trainable_params: int
    total_params: int


def library_versions() -> dict[str, str]:
    """What trained it, for the adapter's training config."""
    import datasets
    import peft
    import transformers
    import trl

    return {m.__name__: str(m.__version__) for m in (torch, transformers, trl, peft, datasets)}


def pick_device(wanted: str) -> str:
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda was asked for, and this worker has no GPU that torch can use")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def load_base(base_model: str, device: str):
    """Tokenizer and model; never code from the model's author, never pickled weights."""
    tokenizer = AutoTokenizer.from_pretrained(base_model, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{base_model} has no chat template: its tokenizer cannot read conversational rows")
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base_model, trust_remote_code=False, use_safetensors=True,
                                                 dtype=dtype)
    return tokenizer, model


def lora_config(config: TrainConfig) -> LoraConfig:
    modules = "all-linear" if config.target_modules == ["all-linear"] else list(config.target_modules)
    return LoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=modules,
                      bias="none", task_type="CAUSAL_LM")


def training_args(kind: Kind, config: TrainConfig, device: str, out: Path):
    common = dict(
        output_dir=str(out / "checkpoints"), num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_steps,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length, seed=config.seed,
        # transformers 5 calls it activation checkpointing (the old name only warns).
        activation_checkpointing=config.gradient_checkpointing, gradient_checkpointing=None,
        use_cpu=device == "cpu", bf16=device == "cuda" and torch.cuda.is_bf16_supported(), fp16=False,
        # Every step's loss reaches the callback; nothing is written but the adapter, which the job saves.
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        dataset_num_proc=None)
    if kind == "sft":
        return SFTConfig(**common, packing=False)
    return DPOConfig(**common, beta=config.beta)


# transformers resets accelerate's process-wide state whenever training arguments are made, so two
# trainings at once in one process break each other: they take turns (and a GPU is one job's anyway).
_ONE_AT_A_TIME = threading.Lock()
WAITING = 0  # the `total` reported while waiting for the lock


def train_lora(base_model: str, data: Path, kind: Kind, config: TrainConfig, out: Path,
               report: Report = lambda step, total, loss: True) -> TrainResult:
    """Train an adapter on `data`; PEFT's adapter files go to `out / "adapter"` (unless stopped).

    `report(step, total, loss)` sees each step; returning False stops training after that step.
    While another training of this process runs, it is called with `total` 0 about once a second."""
    while not _ONE_AT_A_TIME.acquire(timeout=1):
        if not report(0, WAITING, float("nan")):
            return TrainResult(stopped=True, steps=0, epochs=0, rows=0, device="", first_loss=None,
                               final_loss=None, loss_history=[], step_time_s=None, train_runtime_s=0,
                               trainable_params=0, total_params=0)
    try:
        return _train(base_model, data, kind, config, out, report)
    finally:
        _ONE_AT_A_TIME.release()


def cpu_threads() -> int:
    """torch's CPU threads for training: FLYWHEEL_RLAAS_TRAIN_THREADS, else one fewer than the cores.

    The worker's event loop (and with `flywheel up`, the API) runs on the same cores, and torch's
    threads spin waiting for each other when a core is busy: on 2 busy cores the tiny test model took
    86-309 ms a step with 2 threads and 3-14 ms with 1 (SFT; DPO 254-667 ms against 11-19 ms)."""
    threads = os.environ.get(THREADS_ENV, "").strip()
    if not threads:
        return max(1, len(os.sched_getaffinity(0)) - 1)
    if not threads.isdigit() or not 1 <= int(threads) <= 1024:
        raise ValueError(f"{THREADS_ENV} is a number of threads from 1 to 1024, not {threads!r}")
    return int(threads)


def _train(base_model: str, data: Path, kind: Kind, config: TrainConfig, out: Path, report: Report) -> TrainResult:
    device = pick_device(config.device)
    if device == "cpu":
        torch.set_num_threads(cpu_threads())
    tokenizer, model = load_base(base_model, device)
    rows = load_dataset("json", data_files=str(data), split="train", cache_dir=str(out / "datasets-cache"))
    callback = JobProgressCallback(report)
    trainer_class = SFTTrainer if kind == "sft" else DPOTrainer
    trainer = trainer_class(model=model, args=training_args(kind, config, device, out), train_dataset=rows,
                            processing_class=tokenizer, peft_config=lora_config(config), callbacks=[callback])
    trainer.remove_callback(PrinterCallback)  # with no progress bar, it prints every step's logs
    started = time.perf_counter()
    output = trainer.train()
    runtime = time.perf_counter() - started
    if not callback.stopped:
        trainer.model.save_pretrained(str(out / "adapter"))
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    losses = [(s, v) for s, v in callback.losses if math.isfinite(v)]
    return TrainResult(
        stopped=callback.stopped, steps=output.global_step, epochs=round(float(trainer.state.epoch or 0), 4),
        rows=len(rows), device=device, first_loss=losses[0][1] if losses else None,
        final_loss=losses[-1][1] if losses else None, loss_history=losses,
        step_time_s=statistics.median(callback.step_seconds) if callback.step_seconds else None,
        train_runtime_s=round(runtime, 3), trainable_params=trainable, total_params=total)
