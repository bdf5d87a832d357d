"""The LoRA trainer: fine-tunes a LoRA adapter with TRL and PEFT on an rlaas export.

- `config`: the hyperparameters a tenant sends (bounded, allow-listed).
- `base_models`: which base models a tenant may name (local folders the
  operator allows, hub ids matching the operator's patterns).
- `train`: `train_lora`, the training itself over a local JSONL file (SFT or
  DPO), with `callback.JobProgressCallback` reporting each step.
- `job`: the `rlaas.train_adapter` worker job around it.

torch, transformers, TRL and PEFT come with the optional `llm-train` extra and
are imported only inside `train` and `callback`, which only the job imports,
when it runs: a server without the extra starts and serves as usual, and a
training job run there fails saying which extra to install.
"""
