"""LightGBM to ONNX, and ONNX Runtime sessions configured for a server.

Measured on these machines (see the project notes): `onnxmltools.convert_lightgbm`
fails above target opset 15 and mis-declares the classifier's label shape, so
we go through skl2onnx with the LightGBM converter registered, opset 15,
`zipmap=False` (plain probability tensors, no list of dicts). ONNX computes in
float32: differences of ~1e-7 against LightGBM's float64 are expected, which
is why the parity check's default tolerance is 1e-5.

Sessions use one intra-op thread: the default pool spins and burns a core per
session for no gain on a single tree-ensemble operator, and a server runs
many sessions side by side.
"""

from __future__ import annotations

import functools

import numpy as np
import onnxruntime as ort

INPUT_NAME = "features"
OPSET = {"": 15, "ai.onnx.ml": 3}


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
    return onx.SerializeToString()


def open_session(onnx_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    """A session and the one output we read: the positive class's probability."""

    def __init__(self, onnx_bytes: bytes) -> None:
        self.session = open_session(onnx_bytes)
        outputs = [o.name for o in self.session.get_outputs()]
        self._outputs = [outputs[1]]  # [label, probabilities]; we only need the latter
        # The public `run` re-checks the input names in Python on every call, which
        # on a one-row request is a measurable share of the model's own time; our
        # inputs are fixed at export, so call the C++ session underneath when this
        # onnxruntime has it (it has for years), else the public method.
        inner = getattr(self.session, "_sess", None)
        if inner is not None and callable(getattr(inner, "run", None)):
            self._run = lambda feed: inner.run(self._outputs, feed, None)
        else:
            self._run = lambda feed: self.session.run(self._outputs, feed)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(label = 1) for each row of a float32 matrix."""
        return self._run({INPUT_NAME: X})[0][:, 1]
