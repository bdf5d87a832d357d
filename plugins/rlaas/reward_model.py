"""The reward model: will the user give this interaction positive feedback?

A model family of the core (`rlaas.reward`): the core trains it with LightGBM
(`POST /v1/models/rlaas.reward/train`, the `core.train_model` job, or
`flywheel rlaas reward-model train`), exports and checks it as ONNX, and
serves it at `POST /v1/models/rlaas.reward/score`, metrics on its model card.

The rows are the tenant's interactions that have thumbs or rating feedback.
The label is the latest such feedback: 1 for thumbs up or a rating of 4 or
5, 0 for thumbs down or a rating of 1 to 3. Edits, comparisons and task
results are not labels (they say which answer is better, or how the task
went, not whether the user liked this one).

The user's feedback history is what was known when the interaction
happened, never after: the count of the same user's thumbs and rating
feedback events (on other interactions) whose time is strictly before the
interaction's, and the share of them that were positive (missing when there
are none). An interaction without a user (no `user` field) has no history.
"""

from __future__ import annotations

import asyncio

import click
import msgspec
import numpy as np
import pyarrow as pa

from flywheel.contracts.models import ModelFamily

FAMILY_NAME = "rlaas.reward"
LABEL = "positive"
TIME = "ts_ms"


class RewardFeatures(msgspec.Struct, kw_only=True):
    """One interaction as the reward model sees it (field order = the ONNX input order).

    Lengths are in characters: `prompt_chars` sums the request messages' contents
    (a content that is not a string counts as its JSON text), `answer_chars` is
    the first choice's answer. `route` and `policy` (the policy's name, all its
    versions alike) are categoricals: a value the version never saw scores as missing.
    """

    route: str | None
    policy: str | None
    prompt_messages: int | None
    prompt_chars: int | None
    answer_chars: int | None
    latency_ms: float | None
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    user_prior_feedback: int | None
    user_prior_positive_rate: float | None


FEATURE_NAMES = list(RewardFeatures.__struct_fields__)

# One statement, so the history is computed where the rows are: each user's feedback events and labelled
# interactions on one timeline, counted with a running window (at equal times the interaction sorts first,
# so feedback at the very instant of the interaction is not "before" it).
TRAINING_ROWS = """
WITH fb AS (
    SELECT i.user_hash, f.ts, f.event_id, f.interaction_id,
           CASE WHEN f.kind = 'thumbs' THEN f.value > 0 ELSE f.value >= 4 END AS positive
    FROM rlaas_feedback f
    JOIN rlaas_interactions i ON i.tenant_id = f.tenant_id AND i.interaction_id = f.interaction_id
    WHERE f.tenant_id = $1 AND f.kind IN ('thumbs', 'rating')
), labelled AS (
    SELECT DISTINCT ON (interaction_id) interaction_id, positive
    FROM fb ORDER BY interaction_id, ts DESC, event_id DESC
), timeline AS (
    SELECT user_hash, ts, 1 AS seq, NULL::uuid AS interaction_id, positive FROM fb WHERE user_hash IS NOT NULL
    UNION ALL
    SELECT i.user_hash, i.ts, 0, i.interaction_id, NULL
    FROM labelled l JOIN rlaas_interactions i ON i.tenant_id = $1 AND i.interaction_id = l.interaction_id
    WHERE i.user_hash IS NOT NULL
), history AS (
    SELECT interaction_id, count(positive) OVER w AS n, sum(positive::int) OVER w AS pos
    FROM timeline
    WINDOW w AS (PARTITION BY user_hash ORDER BY ts, seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT i.route, i.policy,
       CASE WHEN jsonb_typeof(i.request -> 'messages') = 'array'
            THEN jsonb_array_length(i.request -> 'messages') END AS prompt_messages,
       CASE WHEN jsonb_typeof(i.request -> 'messages') = 'array'
            THEN (SELECT coalesce(sum(length(CASE jsonb_typeof(m -> 'content') WHEN 'string' THEN m ->> 'content'
                                                  ELSE (m -> 'content')::text END)), 0)
                  FROM jsonb_array_elements(i.request -> 'messages') m) END AS prompt_chars,
       length(i.response #>> '{choices,0,message,content}') AS answer_chars,
       i.latency_ms, i.ttft_ms, i.prompt_tokens, i.completion_tokens,
       CASE WHEN i.user_hash IS NOT NULL THEN coalesce(h.n, 0) END AS user_prior_feedback,
       CASE WHEN h.n > 0 THEN h.pos::float8 / h.n END AS user_prior_positive_rate,
       l.positive::int AS positive,
       (extract(epoch FROM i.ts) * 1000)::bigint AS ts_ms
FROM labelled l
JOIN rlaas_interactions i ON i.tenant_id = $1 AND i.interaction_id = l.interaction_id
LEFT JOIN history h ON h.interaction_id = l.interaction_id
ORDER BY i.ts, i.interaction_id
"""

_TYPES = {"route": pa.string(), "policy": pa.string(), "prompt_messages": pa.int64(), "prompt_chars": pa.int64(),
          "answer_chars": pa.int64(), "latency_ms": pa.float64(), "ttft_ms": pa.float64(),
          "prompt_tokens": pa.int64(), "completion_tokens": pa.int64(), "user_prior_feedback": pa.int64(),
          "user_prior_positive_rate": pa.float64(), LABEL: pa.int8(), TIME: pa.int64()}


def rows_table(rows: list) -> pa.Table:
    """Query rows as an Arrow table, column by column, typed even when there are none."""
    columns = list(zip(*rows)) if rows else [[] for _ in _TYPES]
    return pa.table({name: pa.array(col, type) for (name, type), col in zip(_TYPES.items(), columns)})


async def training_table(db, tenant_id) -> pa.Table:
    table = rows_table(await db.fetch(TRAINING_ROWS, tenant_id))
    y = np.asarray(table.column(LABEL))
    with_user = table.column("user_prior_feedback").is_valid()
    notes = [
        f"Rows: the {table.num_rows:,} interactions with thumbs or rating feedback; {int(y.sum()):,} positive "
        f"({y.mean():.1%})." if table.num_rows else "Rows: none (no interaction has thumbs or rating feedback).",
        "Label `positive`: the interaction's latest thumbs or rating feedback is thumbs up or a rating of 4 or 5.",
        "User history: the user's thumbs and rating feedback strictly before the interaction's time (count, "
        f"positive share); {int(np.asarray(with_user).sum()):,} rows have a user.",
    ]
    meta = {"notes": notes, "rows": table.num_rows, "positives": int(y.sum())}
    return table.replace_schema_metadata({b"flywheel.data": msgspec.json.encode(meta)})


async def load_training_data(ctx, request) -> pa.Table:
    return await training_table(ctx.db, ctx.tenant_id)


FAMILY = ModelFamily(
    name=FAMILY_NAME,
    features=RewardFeatures,
    label=LABEL,
    time_column=TIME,
    load_training_data=load_training_data,
    params={"num_leaves": 15, "min_child_samples": 20, "learning_rate": 0.05},
    primary_metric="roc_auc",
    description=("The probability that the user gives an interaction positive feedback (thumbs up, or a rating "
                 "of 4 or 5), from its route, policy, lengths, latency, token counts and the user's feedback "
                 "history before it."),
    intended_use=("Ranking answers and comparing policies (a canary against the active one) where explicit "
                  "feedback is sparse; a reward signal for answers nobody rated."),
    limitations=("Learns from the interactions people chose to rate, which are not a random sample. It sees "
                 "lengths and timings, never the text itself, so it cannot tell a right answer from a wrong one "
                 "of the same shape. A route or policy the version never saw scores as missing."),
)


# -- `flywheel rlaas reward-model ...` ---------------------------------------------------------------

@click.group(name="reward-model")
def reward_model_cli() -> None:
    """The reward model (`rlaas.reward`): trained on the interactions users rated."""


@reward_model_cli.command()
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--split", type=click.Choice(["random", "time"]), default="random", show_default=True,
              help="time: the newest interactions are the holdout.")
@click.option("--activate/--no-activate", default=True, show_default=True,
              help="Activate the new version if it beats the active one on ROC-AUC.")
@click.option("--json", "as_json", is_flag=True, help="Print the job's result and the metrics as JSON.")
def train(tenant: str, split: str, activate: bool, as_json: bool) -> None:
    """Train a version as `POST /v1/models/rlaas.reward/train` would, showing the job's progress."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from flywheel.server.plugin_api import NotFound, cli_state, find_tenant, follow_job, model_version, run_here

    async def go() -> tuple[dict, dict]:
        async with cli_state() as state:
            try:
                t = await find_tenant(state, tenant)
            except NotFound:
                raise click.ClickException(f"no tenant {tenant!r}") from None
            payload = {"family": FAMILY_NAME, "split": split, "auto_activate": activate}
            job_id, task = await run_here(state, "core.train_model", payload, tenant_id=t.id)
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[message]}"),
                          TimeElapsedColumn(), console=Console(stderr=True)) as progress:
                bar = progress.add_task("training", total=None, message="")
                status = await follow_job(state, job_id, tenant_id=t.id, on_progress=lambda s: progress.update(
                    bar, completed=s.progress.current, total=s.progress.total, message=s.progress.message or ""))
            await task
            if status.state.value != "succeeded":
                raise click.ClickException(f"training failed: {status.error}")
            version = await model_version(state, t.id, FAMILY_NAME, status.result["version"])
            return status.result, version.metrics or {}

    result, metrics = asyncio.run(go())
    if as_json:
        click.echo(msgspec.json.encode({"result": result, "metrics": metrics}))
        return
    table = Table("metric", "value", title=f"{FAMILY_NAME} v{result['version']} on the test split")
    for key in ("roc_auc", "pr_auc", "log_loss", "brier", "positive_rate", "trees"):
        value = metrics.get(key)
        table.add_row(key, "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value))
    console = Console()
    console.print(table)
    console.print(result.get("activation", ""), markup=False)
