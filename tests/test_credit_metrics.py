"""Credit metrics against hand-computed values, transforms, and the core's categorical features."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from flywheel.plugins.credit import evaluation as ev
from flywheel.plugins.credit.contracts import EvaluationPolicy, FeatureDefinition
from flywheel.plugins.credit.scoring import points
from flywheel.plugins.credit.transforms import materialize
from flywheel.server.models.features import FeatureSpec


def test_ks_by_hand():
    # good scores 0.1 0.2 0.4, bad 0.3 0.5 0.6: at t = 0.2 the goods' CDF is 2/3 and the bads' 0;
    # at t = 0.4 it is 1 against 1/3. Every other threshold gives a smaller gap.
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert ev.ks_statistic(y, p) == pytest.approx(2 / 3)
    assert ev.ks_statistic(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0


def test_psi_by_hand():
    # Train 1..10: its deciles put one value in each of 10 bins (shares 0.1) and none missing.
    # Test: five 1s (bin 0: 0.5), 2 3 4 5 (0.1 each), nothing above 5, one missing (0.1).
    train = np.arange(1, 11, dtype=float)
    test = np.array([1, 1, 1, 1, 1, 2, 3, 4, 5, np.nan])
    floor = 1e-4  # an empty bin counts as this share
    expected = ((0.5 - 0.1) * math.log(0.5 / 0.1)  # bin 0
                + 5 * (floor - 0.1) * math.log(floor / 0.1)  # bins 5-9, empty in test
                + (0.1 - floor) * math.log(0.1 / floor))  # the missing bin, empty in train
    assert ev.psi(train, test) == pytest.approx(expected)
    assert ev.psi(train, train) == 0.0
    assert ev.psi_categorical(["a", "a", "b", None], ["a", "b", "b", None]) == pytest.approx(
        (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.5 - 0.25) * math.log(0.5 / 0.25))


def test_bins_count_each_row_where_its_value_falls():
    """Bins are counted by a vectorized lookup among the edges; each row must land where its own
    value puts it: (-inf, e0], (e0, e1], ..., (e_last, inf), then missing. Ties sit on the edges here."""
    rng = np.random.default_rng(5)
    train = rng.integers(0, 6, 997).astype(float)  # few values: every edge is a tie
    train[rng.random(997) < 0.1] = np.nan
    x = np.concatenate([rng.integers(-1, 8, 500).astype(float), [np.nan, np.inf, -np.inf]])
    edges = ev.decile_edges(train)
    assert np.array_equal(edges, np.unique(np.quantile(train[~np.isnan(train)], np.linspace(0.1, 0.9, 9))))
    by_row = np.zeros(len(edges) + 2)
    for value in x:
        by_row[-1 if np.isnan(value) else sum(value > e for e in edges)] += 1
    assert np.array_equal(ev.bin_shares(x, edges), by_row / len(x))
    assert ev.decile_edges(np.array([np.nan])).size == 0  # an all-missing column: one bin, missing


def test_categorical_psi_from_codes_is_the_psi_of_the_values():
    values = ["b", "a", None, "c", "a", "b", "b", None, "c", "a"]
    categories = ["c", "a", "b"]  # in first-seen order, as a dictionary encoding gives them
    codes = np.array([-1 if v is None else categories.index(v) for v in values])
    train, test = np.array([0, 1, 2, 3, 4, 5]), np.array([6, 7, 8, 9])
    assert ev.psi_categorical_codes(codes, categories, train, test) == ev.psi_categorical(
        [values[i] for i in train], [values[i] for i in test])


def test_calibration_table_matches_a_direct_computation():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 500)
    y = (rng.uniform(0, 1, 500) < p).astype(int)
    edges = np.quantile(rng.uniform(0, 1, 300), [0.2, 0.4, 0.6, 0.8])
    table = ev.calibration_by_band(y, p, edges)
    bounds = [0.0, *edges, 1.0]
    assert len(table) == 5 and sum(b["rows"] for b in table) == 500
    for b, row in enumerate(table):
        inside = [i for i in range(500) if (b == 0 or p[i] > bounds[b]) and p[i] <= bounds[b + 1]]
        assert row["rows"] == len(inside)
        assert row["mean_predicted"] == pytest.approx(sum(p[i] for i in inside) / len(inside))
        assert row["observed_bad_rate"] == pytest.approx(sum(y[i] for i in inside) / len(inside))


def test_confusion_and_policy():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.6, 0.4, 0.1])
    [c] = ev.confusion(y, p, [0.5])
    assert (c["true_bad"], c["false_bad"], c["true_good"], c["false_good"]) == (1, 1, 1, 1)
    failures = ev.apply_policy(EvaluationPolicy(auc_min=0.8, psi_max=0.1, feature_psi_max=0.2),
                               {"auc": 0.75, "score_psi": 0.05, "feature_psi": {"a": 0.3, "b": 0.1}})
    assert [(f.threshold, f.feature) for f in failures] == [("auc_min", None), ("feature_psi_max", "a")]


def test_points_follow_the_scaling():
    from flywheel.plugins.credit.contracts import Scaling

    s = Scaling()
    assert points(1 / 51, s) == pytest.approx(600)  # odds 50:1 sit at the base score
    assert points(1 / 101, s) == pytest.approx(600 + 20 * math.log2(100 / 50))  # double the odds: +PDO


def test_transforms():
    table = pa.table({"a": [0.0, 9.0, None, -3.0], "b": [2.0, 0.0, 1.0, 1.0], "s": ["x", None, "y", "x"]})
    defs = [FeatureDefinition(name="l", source_columns=["a"], transform="log1p"),
            FeatureDefinition(name="r", source_columns=["a", "b"], transform="ratio"),
            FeatureDefinition(name="k", source_columns=["a"], transform="bucket", params={"edges": [0, 5]}),
            FeatureDefinition(name="c", source_columns=["a"], transform="clip", params={"lower": 0, "upper": 5}),
            FeatureDefinition(name="m", source_columns=["s"], transform="missing_indicator"),
            FeatureDefinition(name="s", source_columns=["s"], transform="categorical")]
    out = materialize(table, defs).to_pydict()
    assert out["l"] == [0.0, pytest.approx(math.log(10)), None, 0.0]
    assert out["r"] == [0.0, None, None, -3.0]  # dividing by zero is missing, not infinite
    assert out["k"] == [1.0, 2.0, None, 0.0]
    assert out["c"] == [0.0, 5.0, None, 0.0]
    assert out["m"] == [0.0, 1.0, 0.0, 0.0]
    assert out["s"] == ["x", None, "y", "x"]


def test_core_categorical_spec_codes_and_unseen_values():
    table = pa.table({"grade": ["b", "a", "b", None, "c", "b"], "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    spec = FeatureSpec.from_table(table, ["grade", "x"]).fit_categories(table)
    assert spec.kinds == ("category", "float")
    assert spec.categories[0] == ("b", "a", "c")  # most frequent first, then by value
    X = spec.table_matrix(pa.table({"grade": ["a", "zz", None], "x": [1.0, 2.0, None]}))
    assert X[0, 0] == 1.0 and np.isnan(X[1, 0]) and np.isnan(X[2, 0]) and np.isnan(X[2, 1])
    stored = spec.to_json()
    assert stored[0] == {"name": "grade", "type": "category", "nullable": True, "categories": ["b", "a", "c"]}
    served = FeatureSpec.from_json(stored)
    row = served.decode_one(msgspec.json.encode({"grade": "c", "x": 2}))
    assert row.tolist() == [[2.0, 2.0]]
    with pytest.raises(Exception) as err:
        served.decode_one(b'{"grade": 3, "x": 2}')
    assert getattr(err.value, "field", None) == "$.grade"


def test_core_static_struct_with_a_categorical_field():
    class Applicant(msgspec.Struct, kw_only=True):
        grade: str | None
        income: float

    spec = FeatureSpec.from_struct(Applicant)
    assert spec.kinds == ("category", "float")
    fitted = spec.fit_categories(pa.table({"grade": ["a", "b", "b"], "income": [1.0, 2.0, 3.0]}))
    assert fitted.categories[0] == ("b", "a")
    assert fitted.decode_one(b'{"grade": "a", "income": 5}').tolist() == [[1.0, 5.0]]
    unseen = fitted.decode_one(b'{"grade": "zz", "income": 5}')
    assert np.isnan(unseen[0, 0])
    rows = fitted.decode_batch(b'{"rows": [{"grade": null, "income": 1}, {"grade": "b", "income": 2}]}')
    assert np.isnan(rows[0, 0]) and rows[1].tolist() == [0.0, 2.0]
