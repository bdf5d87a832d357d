"""The drives model on real data: 21 Backblaze days (2013-04-10..04-30, 452,821 drive-days, 43 failing drives).

Read only through the `shared_data` fixture (skipped, saying why, when the data is absent).
"""

from __future__ import annotations

import time
from datetime import date

import pytest

from flywheel.plugins.drives.backtest import Backtest, run_backtest
from flywheel.plugins.drives.daily import import_file
from flywheel.plugins.drives.features import build_features
from flywheel.plugins.drives.model import training_table

TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
async def april(shared_data, make_tenant, database):
    """A tenant holding backblaze-april, imported and with features built (timings printed)."""
    t = await make_tenant()
    files = sorted((shared_data / "backblaze-april").glob("*.csv.gz"))
    assert len(files) == 21
    started = time.perf_counter()
    for path in files:
        await import_file(database, t.id, path)
    TIMES["import"] = time.perf_counter() - started
    started = time.perf_counter()
    built = await build_features(database, t.id)
    TIMES["features"] = time.perf_counter() - started
    assert built["drive_days"] == 452_821
    print(f"\nimport {TIMES['import']:.1f}s, features {TIMES['features']:.1f}s")
    return t


async def test_training_table_on_21_days_is_censored_and_split(april, database):
    table = await training_table(database, april.id)
    import msgspec

    meta = msgspec.json.decode(table.schema.metadata[b"flywheel.data"])
    assert meta["horizon_days"] == 7, "21 days support 7 (14 needs 28)"
    rows = table.to_pylist()
    assert all(r["observed"] or r["failed_within_horizon"] for r in rows), "censored negatives are dropped"
    assert meta["censored_dropped"] > 0 and meta["censored_positives"] > 0
    sides: dict[str, set[int]] = {}
    for r in rows:
        if r["split"] >= 0:
            sides.setdefault(r["serial_number"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values()), "no drive on both sides"
    for part in (1, 2):
        assert any(r["failed_within_horizon"] for r in rows if r["split"] == part)
    train_last = max(r["day_num"] for r in rows if r["split"] == 0)
    holdout_first = min(r["day_num"] for r in rows if r["split"] in (1, 2))
    assert holdout_first - train_last > 1, "a purge gap between training and holdout days"
    print("\n".join(meta["notes"]))


async def test_backtest_model_beats_the_smart_rule_at_horizon_7(april, state):
    """Trained to 04-23 (split, family parameters and features fixed before this week was looked at), scored
    04-24..04-30: 21,693 labelled drive-days (negatives only on 04-24, the one day whose 7-day window the data
    covers; positives on every day), 19 positive, 15 failing drives. Measured with the drive model as an input:
    model ROC-AUC 0.907 / PR-AUC 0.107 (0.857 / 0.117 before it), SMART rule 0.843 / 0.030; recall in the daily
    top 1%: 0.47 for the model (0.60 before), 0.60 for the rule."""
    started = time.perf_counter()
    out = await run_backtest(state, april.id, Backtest(train_until=date(2013, 4, 23), from_=date(2013, 4, 24),
                                                       to=date(2013, 4, 30), horizon=7))
    print(f"\nbacktest {time.perf_counter() - started:.1f}s", out)
    model, rule = out["model"], out["smart_rule"]
    assert out["counts"]["failing_drives"] > 0
    assert model["roc_auc"] > rule["roc_auc"] and model["pr_auc"] > rule["pr_auc"]


def cli_env(settings) -> dict:
    return {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "FLYWHEEL_STORE_URL": settings.store_url, "FLYWHEEL_DATA_DIR": settings.data_dir}


async def test_train_on_21_days_picks_horizon_7_and_scores_at_full_precision(april, flywheel_settings, client):
    import asyncio

    from click.testing import CliRunner

    from flywheel.server.cli.main import cli

    started = time.perf_counter()
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["drives", "train", "--tenant", april.name],
                                     env=cli_env(flywheel_settings))
    assert result.exit_code == 0, result.output
    print(f"\ntrain + score via the CLI {time.perf_counter() - started:.1f}s")
    assert "horizon 7 days: the longest 21 days of data support; 14 needs 28" in result.output
    assert "activated: the first ready version (pr_auc " in result.output
    page = (await client.get("/v1/drives/scores", params={"limit": 1000}, headers=april.headers)).json()
    assert page["day"] == "2013-04-30" and len(page["items"]) == 1000 and page["next_cursor"]
    margins = [d["margin"] for d in page["items"]]
    assert margins == sorted(margins, reverse=True)
    everything = (await client.get("/v1/drives/scores.csv", headers=april.headers)).text.splitlines()
    risks = [float(line.split(",")[3]) for line in everything[1:]]
    assert len(risks) > 20_000 and min(risks) > 0.0, "no score is exactly 0.0"
    # Healthy drives with the same readings share a leaf path, so ties are real; but no two margins
    # share a probability (a float32 one merged every margin below about -17 into 0.0).
    margins_csv = [float(line.split(",")[4]) for line in everything[1:]]
    assert len(set(risks)) == len(set(margins_csv)) > 100
    high = [line for line in everything[1:] if line.split(",")[5] == "high"]
    assert len(high) == -(-len(risks) // 100), "the riskiest 1% are high"


async def test_train_on_5_days_says_how_many_it_needs(shared_data, make_tenant, database, flywheel_settings):
    import asyncio

    from click.testing import CliRunner

    from flywheel.server.cli.main import cli

    t = await make_tenant()
    for path in sorted((shared_data / "backblaze").glob("*.csv.gz")):
        await import_file(database, t.id, path)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["drives", "train", "--tenant", t.name],
                                     env=cli_env(flywheel_settings))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("training needs at least 14 days of drive features (for a 7-day horizon); there are 5"
            in result.output), result.output


async def test_age_from_power_on_hours_helps_on_the_split_and_the_week_after(april, state):
    """The one generalizing feature kept by measurement (`drop_features` trains with its column missing).

    Judged first on the version's own test split (days up to 04-23, drives not trained on), then on the
    week after. Measured: with age, split PR-AUC 0.215 / ROC-AUC 0.893, week PR-AUC 0.117; without,
    0.204 / 0.872 and 0.071. (`power_on_hours_d7` scored the same to the last digit without it: dropped.)
    That was before the drive model was an input, and is measured so here (both versions without `model`).
    With the model in, age leaves split PR-AUC level (0.522 with it, 0.525 without) and raises split ROC-AUC
    0.902 -> 0.920 (week 0.093 / 0.850 -> 0.107 / 0.907; see the test below): it stays.
    """
    from flywheel.server.plugin_api import model_version

    figures = {}
    for drop in (["model"], ["age_days", "model"]):
        out = await run_backtest(state, april.id, Backtest(train_until=date(2013, 4, 23), from_=date(2013, 4, 24),
                                                           to=date(2013, 4, 30), horizon=7, drop_features=drop))
        split = (await model_version(state, april.id, "drives.h30", out["model_version"])).metrics
        figures[out["features"]] = (split["pr_auc"], split["roc_auc"], out["model"]["pr_auc"])
        importance = {f["feature"]: f for f in split["feature_importance"]}
        if "age_days" in drop:
            assert not importance.get("age_days", {}).get("gain"), "a missing column is never split on"
    print("\n", figures)
    with_age, without = figures["without model"], figures["without age_days, model"]
    assert with_age[0] > without[0] and with_age[1] > without[1], "better on the split, before the week"
    assert with_age[2] > without[2], "and on the week after"


async def test_drive_model_is_a_categorical_input_and_capacity_is_not(april, state):
    """The decision on the two identity-like inputs, pinned (ablation with `drop_features`, train to 04-23, H = 7).

    Judged on the version's own test split before the week after. The drive model, as a categorical: split
    PR-AUC 0.215 -> 0.522, ROC-AUC 0.893 -> 0.920 (week 0.117 -> 0.107 PR-AUC, 0.857 -> 0.907 ROC-AUC): kept.
    Capacity in TB, beside the model: split 0.522 / 0.920 without it, 0.520 / 0.895 with it (week 0.107 / 0.907
    without, 0.091 / 0.912 with): it adds nothing the model does not name, so it is not a feature (alone,
    without the model, it gave 0.300 / 0.919: a coarser name for the same thing).
    """
    from flywheel.plugins.drives.model import FEATURE_NAMES
    from flywheel.server.plugin_api import model_version

    assert "model" in FEATURE_NAMES
    assert not {"capacity_tb", "capacity_bytes", "capacity"} & set(FEATURE_NAMES), "capacity: see the docstring"
    figures = {}
    for drop in ([], ["model"], ["age_days"]):
        out = await run_backtest(state, april.id, Backtest(train_until=date(2013, 4, 23), from_=date(2013, 4, 24),
                                                           to=date(2013, 4, 30), horizon=7, drop_features=drop))
        split = (await model_version(state, april.id, "drives.h30", out["model_version"])).metrics
        figures[out["features"]] = (split["pr_auc"], split["roc_auc"], out["model"]["pr_auc"], out["model"]["roc_auc"])
        importance = {f["feature"]: f for f in split["feature_importance"]}
        assert bool(importance.get("model", {}).get("gain")) == ("model" not in drop), "split on only when present"
    print("\n", figures)
    with_model, without = figures["current"], figures["without model"]
    assert with_model[0] > without[0] and with_model[1] > without[1], "better on the split"
