"""LightGBM to ONNX, and ONNX Runtime sessions configured for a server.

Measured on these machines (see the project notes): `onnxmltools.convert_lightgbm`
fails above target opset 15 and mis-declares the classifier's label shape, so
we go through skl2onnx with the LightGBM converter registered, opset 15,
`zipmap=False` (plain tensors, no list of dicts).

The graph outputs the raw margin (log-odds), not a probability: the tree
ensemble's LOGISTIC post-transform is switched off at export. ONNX computes
in float32, and a float32 probability saturates: every margin below about
-17 becomes exactly 0.0 and ranks as a tie, which on rare events (failing
drives) costs real ROC-AUC. A float32 margin keeps ~7 significant digits at
any magnitude, so the probability is computed from it here, in float64.
Versions exported before this (no `flywheel.output` metadata) still load and
serve their float32 probabilities.

Sessions use one intra-op thread: the default pool spins and burns a core per
session for no gain on a single tree-ensemble operator, and a server runs
many sessions side by side.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import onnxruntime as ort

INPUT_NAME = "features"
OPSET = {"": 15, "ai.onnx.ml": 3}
OUTPUT_KEY = "flywheel.output"  # ONNX metadata: "margin" when the graph outputs log-odds


@functools.cache
def _register_converter() -> None:
    from lightgbm import LGBMClassifier
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes, convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


def export_classifier(model, n_features: int, name: str) -> bytes:
    """A fitted `LGBMClassifier` as ONNX bytes: input `features` (float32, [N, n_features])."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    _register_converter()
    onx = convert_sklearn(model, name=name, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
                          target_opset=OPSET, options={id(model): {"zipmap": False}})
    floor_thresholds(onx, model.booster_)
    serve_margin(onx)
    return onx.SerializeToString()


def floor_thresholds(onx, booster) -> None:
    """Make each `x <= t` split send every float32 input where LightGBM sends it.

    LightGBM compares in float64 against thresholds that lie between two
    data values; the converter stores each threshold as the *nearest*
    float32, which can be the data value just above it. A row holding
    exactly that value then goes left in ONNX and right in LightGBM, and
    gets another leaf (seen on 200,000-row credit data: a margin off by
    0.05). For float32 inputs, `x <= t` is `x <= the largest float32 <= t`:
    where the stored value rounded up, it is moved one float32 down. Splits
    are matched to LightGBM's by tree, feature and rounded value (the node
    orders differ); a value two thresholds share from either side is left
    as it is, and the parity check judges it.
    """
    node = next(n for n in onx.graph.node if n.op_type == "TreeEnsembleClassifier")
    attrs = {a.name: a for a in node.attribute}
    doubles = _thresholds_by_tree(booster)
    values = list(attrs["nodes_values"].floats)
    for i, (tree, feature, mode) in enumerate(zip(attrs["nodes_treeids"].ints, attrs["nodes_featureids"].ints,
                                                   attrs["nodes_modes"].strings, strict=True)):
        if mode != b"BRANCH_LEQ":
            continue
        found = doubles.get((tree, feature, values[i]))
        if found and all(t < values[i] for t in found):
            values[i] = float(np.nextafter(np.float32(values[i]), np.float32(-np.inf)))
    del attrs["nodes_values"].floats[:]
    attrs["nodes_values"].floats.extend(values)


def _thresholds_by_tree(booster) -> dict[tuple[int, int, float], set[float]]:
    """(tree, feature, threshold as float32) -> LightGBM's float64 thresholds of `<=` splits."""
    out: dict[tuple[int, int, float], set[float]] = {}
    for tree, info in enumerate(booster.dump_model()["tree_info"]):
        pending = [info["tree_structure"]]
        while pending:
            n = pending.pop()
            if "split_feature" not in n:
                continue
            if n.get("decision_type") == "<=":
                with np.errstate(over="ignore"):  # LightGBM's 1e300 "everything" threshold is inf in float32
                    key = (tree, n["split_feature"], float(np.float32(n["threshold"])))
                out.setdefault(key, set()).add(float(n["threshold"]))
            pending += [n["left_child"], n["right_child"]]
    return out


def serve_margin(onx) -> None:
    """Switch the classifier's sigmoid off: its second output becomes [-margin, margin] per row."""
    ensembles = [n for n in onx.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(ensembles) != 1:
        raise ValueError(f"expected one TreeEnsembleClassifier in the exported graph, found {len(ensembles)}")
    for attr in ensembles[0].attribute:
        if attr.name == "post_transform":
            attr.s = b"NONE"
    onx.metadata_props.add(key=OUTPUT_KEY, value="margin")


def logistic(margin: float) -> float:
    """P(label = 1) of one margin, in float64; no overflow either way (math.exp of a negative only)."""
    if margin >= 0:
        return 1.0 / (1.0 + math.exp(-margin))
    e = math.exp(margin)
    return e / (1.0 + e)


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """P(label = 1) in float64 from margins (expit: no overflow for large negative margins)."""
    from scipy.special import expit

    return expit(np.asarray(margin, dtype=np.float64))


def open_session(onnx_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    """A session and the one output we read: the positive class's margin (or, for old exports, probability)."""

    def __init__(self, onnx_bytes: bytes) -> None:
        self.session = open_session(onnx_bytes)
        outputs = [o.name for o in self.session.get_outputs()]
        self._outputs = [outputs[1]]  # [label, scores]; we only need the latter
        meta = self.session.get_modelmeta().custom_metadata_map
        self.outputs_margin = meta.get(OUTPUT_KEY) == "margin"
        # The public `run` re-checks the input names in Python on every call, which
        # on a one-row request is a measurable share of the model's own time; our
        # inputs are fixed at export, so call the C++ session underneath when this
        # onnxruntime has it (it has for years), else the public method.
        inner = getattr(self.session, "_sess", None)
        if inner is not None and callable(getattr(inner, "run", None)):
            self._run = lambda feed: inner.run(self._outputs, feed, None)
        else:
            self._run = lambda feed: self.session.run(self._outputs, feed)

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The raw margin (log-odds, float64) of each row of a float32 matrix."""
        out = self._run({INPUT_NAME: X})[0][:, 1]
        if self.outputs_margin:
            return out.astype(np.float64)
        # A version exported before margins were served: its saturated probabilities are all there is.
        p = np.clip(out.astype(np.float64), 1e-300, 1 - 1e-16)
        return np.log(p) - np.log1p(-p)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(label = 1), float64, for each row of a float32 matrix."""
        if not self.outputs_margin:
            return self._run({INPUT_NAME: X})[0][:, 1].astype(np.float64)
        return sigmoid(self.margin(X))

    def score_one(self, X: np.ndarray) -> tuple[float, float]:
        """(probability, margin) of a one-row matrix: `/score`'s path, without numpy's per-call
        overhead for one value (about 1 us of the ~8 us a request spends here)."""
        if not self.outputs_margin:
            p, m = self.scores(X)
            return float(p[0]), float(m[0])
        m = float(self._run({INPUT_NAME: X})[0][0, 1])
        return logistic(m), m

    def scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, margins) from one pass of the model."""
        m = self.margin(X)
        p = sigmoid(m) if self.outputs_margin else self._run({INPUT_NAME: X})[0][:, 1].astype(np.float64)
        return p, m
