"""The model lifecycle: training (training.py), ONNX export (onnx.py), the
registry (registry.py), serving and hot swaps (runtime.py), the HTTP API
(api.py), feature checking (features.py), metrics and the model card."""
