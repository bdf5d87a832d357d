"""The peer: the model service Flywheel replaces, rebuilt faithfully.

FastAPI + pydantic request models, a LightGBM `LGBMClassifier` loaded with
joblib at startup, `predict_proba` per request (`/score` one row,
`/score_batch` many). The one change from the original: `n_jobs=1`, the
same single-thread setting Flywheel's ONNX sessions use; LightGBM's default
pool spins on every core and would only slow it down on this machine.

    PEER_MODEL=/path/model.joblib uvicorn benchmarks.peers.fastapi_scoring.app:app
"""

from __future__ import annotations

import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, create_model

NAMES = [f"f{i:02d}" for i in range(40)]
Features = create_model("Features", __config__=ConfigDict(extra="forbid"), **{n: (float, ...) for n in NAMES})


class Batch(BaseModel):
    rows: list[Features]


class Score(BaseModel):
    score: float
    model_version: str


class BatchScore(BaseModel):
    scores: list[float]
    model_version: str


model = joblib.load(os.environ["PEER_MODEL"])
model.set_params(n_jobs=1)
app = FastAPI(title="model service")


@app.post("/score", response_model=Score)
def score(features: Features) -> Score:
    x = np.array([[getattr(features, n) for n in NAMES]])
    return Score(score=float(model.predict_proba(x)[0, 1]), model_version="v1")


@app.post("/score_batch", response_model=BatchScore)
def score_batch(batch: Batch) -> BatchScore:
    x = np.array([[getattr(r, n) for n in NAMES] for r in batch.rows])
    return BatchScore(scores=model.predict_proba(x)[:, 1].tolist(), model_version="v1")
