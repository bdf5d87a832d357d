"""The LoRA trainer's hyperparameters, as a tenant sends them (`config` of `POST /v1/rlaas/adapters`).

Every value reaches TRL, PEFT or transformers, so every one is bounded here,
and the modules LoRA may wrap come from a fixed list of the names the common
architectures use (Llama, Mistral, Qwen, Gemma, Phi: `q_proj`...; GPT-2:
`c_attn`...; Falcon, GPT-NeoX: `query_key_value`...), or `all-linear`, PEFT's
name for every linear layer but the output head.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

TargetModule = Literal[
    "all-linear",
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",  # Llama, Mistral, Qwen, Gemma
    "qkv_proj", "gate_up_proj", "dense", "fc1", "fc2",  # Phi
    "c_attn", "c_proj", "c_fc",  # GPT-2
    "query_key_value", "dense_h_to_4h", "dense_4h_to_h",  # Falcon, GPT-NeoX
]
Device = Literal["auto", "cpu", "cuda"]
Scheduler = Literal["linear", "cosine", "constant", "constant_with_warmup"]


class TrainConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How to fine-tune. `max_steps`, when given, ends training there whatever `epochs` says.

    `beta` is DPO's: how far the adapter may move from the base model (ignored for SFT).
    `device`: `auto` takes a GPU when the worker has one, else the CPU.
    """

    epochs: Annotated[int, msgspec.Meta(ge=1, le=20)] = 1
    max_steps: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    learning_rate: Annotated[float, msgspec.Meta(gt=0, le=0.1)] = 2e-4
    lr_scheduler: Scheduler = "linear"
    warmup_steps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=256)] = 4
    gradient_accumulation_steps: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    max_length: Annotated[int, msgspec.Meta(ge=16, le=32_768)] = 1024
    r: Annotated[int, msgspec.Meta(ge=1, le=256)] = 8
    alpha: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16
    dropout: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.05
    target_modules: Annotated[list[TargetModule], msgspec.Meta(min_length=1, max_length=16)] = msgspec.field(
        default_factory=lambda: ["all-linear"])
    beta: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.1
    gradient_checkpointing: bool = False
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    device: Device = "auto"


def config_problem(config: TrainConfig) -> tuple[str, str] | None:
    """(field, why) for what each value allows alone but not together; None when it is fine."""
    if "all-linear" in config.target_modules and len(config.target_modules) > 1:
        return "target_modules", "`all-linear` already names every linear layer: give it alone"
    if len(set(config.target_modules)) != len(config.target_modules):
        return "target_modules", "a module is named twice"
    return None
