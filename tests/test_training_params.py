"""Training parameters from requests: `TrainingParams` reaches LightGBM, and nothing else does.

LightGBM's own parameter table (the aliases the library reports) is the
reference: every accepted name must be a LightGBM parameter, and the
parameters that touch files, the network, threads, devices or outputs,
picked from that table by name, are refused on both ways of queueing a
training: `POST /v1/models/{family}/train` and `POST /v1/jobs`.
"""

from __future__ import annotations

import math
import os
import re

import lightgbm as lgb
import msgspec
import numpy as np
import pytest
from lightgbm.basic import _ConfigAliases

from flywheel.contracts.models import (
    MAX_MODEL_LEAVES,
    TRAINING_PARAMS,
    ModelFamily,
    TrainingParams,
    TrainModel,
)
from flywheel.server.models.training import lightgbm_params

FAMILY = "example.note_reopen"
TRAIN = f"/v1/models/{FAMILY}/train"
LIGHTGBM = _ConfigAliases._get_all_param_aliases()  # parameter -> [parameter, *aliases]
CANONICAL = {alias: name for name, aliases in LIGHTGBM.items() for alias in aliases}
# Parameters whose values are paths, addresses, ports, thread counts, devices or outputs.
RISKY = re.compile(r"file|machine|port|time_out|thread|device|gpu|output|input|model|snapshot|"
                   r"save_binary|pre_partition|^(data|valid|task|config|tree_learner)$")
DANGEROUS = sorted({alias for name, aliases in LIGHTGBM.items() if RISKY.search(name)
                    for alias in aliases})

# The review's findings, as sent.
ATTACKS = {
    "tree_learner": {"tree_learner": "data", "num_machines": 2, "local_listen_port": 19000,
                     "machines": "127.0.0.1:19000,127.0.0.1:19001"},
    "forcedbins_filename": {"forcedbins_filename": "/etc/passwd"},
    "num_threads": {"num_threads": 256},
    "output_model": {"output_model": "/tmp/flywheel-model.txt"},
    "device_type": {"device_type": "gpu"},
    "no_such_parameter": {"no_such_parameter": 1},
    # An alias of an accepted parameter: only the documented names are taken.
    "feature_fraction": {"feature_fraction": 0.5},
}

# Every accepted parameter, set away from its default, in two runs: LightGBM refuses is_unbalance
# with scale_pos_weight, and trains intermediate monotone constraints only without colsample_bynode.
FIRST = {"learning_rate": 0.08, "num_leaves": 11, "max_depth": 6, "min_child_samples": 15,
         "min_child_weight": 0.01, "min_split_gain": 0.001, "subsample": 0.9, "subsample_freq": 2,
         "colsample_bytree": 0.8, "colsample_bynode": 0.9, "reg_alpha": 0.01, "reg_lambda": 2.0,
         "max_bin": 127, "min_data_in_bin": 5, "scale_pos_weight": 1.5, "path_smooth": 0.5,
         "extra_trees": True, "max_delta_step": 5.0}
SECOND = {"is_unbalance": True, "monotone_constraints_method": "intermediate", "max_bin": 63}

OUT_OF_BOUNDS = [
    ({"params": {"num_leaves": 1_000_000}}, "$.params.num_leaves"),
    ({"params": {"num_leaves": 1}}, "$.params.num_leaves"),
    ({"params": {"max_bin": 65_535}}, "$.params.max_bin"),
    ({"params": {"learning_rate": 0}}, "$.params.learning_rate"),
    ({"params": {"subsample": 1.5}}, "$.params.subsample"),
    ({"params": {"min_child_samples": 2**40}}, "$.params.min_child_samples"),
    ({"params": {"scale_pos_weight": 0}}, "$.params.scale_pos_weight"),
    ({"params": {"max_delta_step": -1}}, "$.params.max_delta_step"),
    ({"params": {"monotone_constraints_method": "x"}}, "$.params.monotone_constraints_method"),
    ({"params": {"extra_trees": "yes"}}, "$.params.extra_trees"),
    # LightGBM joins parameters as "k=v k=v": a string here could smuggle in another.
    ({"params": {"num_leaves": "31 machines=10.0.0.1:80"}}, "$.params.num_leaves"),
    ({"params": {"is_unbalance": True, "scale_pos_weight": 2.0}}, "$.params"),
    ({"params": {"monotone_constraints_method": "advanced", "colsample_bynode": 0.5}}, "$.params"),
    ({"params": {"path_smooth": 1.0, "min_child_samples": 1}}, "$.params"),
    ({"params": ["num_leaves", 31]}, "$.params"),
    ({"seed": 2**31}, "$.seed"),
    ({"seed": -1}, "$.seed"),
    ({"num_boost_round": 20_001}, "$.num_boost_round"),
]


def error_of(response, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == "validation_error", body
    return body


async def queue_job(client, headers, payload: dict):
    body = {"name": "core.train_model", "payload": {"family": FAMILY, **payload}}
    return await client.post("/v1/jobs", json=body, headers=headers)


def test_accepted_parameters_are_lightgbms_and_none_is_risky():
    unknown = set(TRAINING_PARAMS) - set(CANONICAL)
    assert not unknown, f"not LightGBM parameters: {unknown}"
    # One field per LightGBM parameter: a request cannot set one twice under two names.
    assert len({CANONICAL[name] for name in TRAINING_PARAMS}) == len(TRAINING_PARAMS)
    assert not set(TRAINING_PARAMS) & set(DANGEROUS)
    # The pattern finds what the review found (a broken one would find nothing to refuse).
    assert {"tree_learner", "num_machines", "machines", "local_listen_port", "forcedbins_filename",
            "forcedsplits_filename", "machine_list_filename", "num_threads", "n_jobs",
            "output_model", "input_model", "device_type", "gpu_device_id", "snapshot_freq",
            "save_binary"} <= set(DANGEROUS)


def bounds() -> dict[str, list]:
    """Each field's smallest and largest accepted value, read from the Struct's own constraints."""
    out = {}
    for f in msgspec.inspect.type_info(TrainingParams).fields:
        (t,) = [x for x in f.type.types if not isinstance(x, msgspec.inspect.NoneType)]
        if isinstance(t, msgspec.inspect.LiteralType):
            out[f.name] = list(t.values)
        elif isinstance(t, msgspec.inspect.BoolType):
            out[f.name] = [True, False]
        else:
            out[f.name] = [t.ge if t.ge is not None else t.gt + 1e-9, t.le]
    return out


def recorded(model_text: str) -> dict[str, str]:
    """The parameters a LightGBM model text says it was trained with."""
    start, end = model_text.index("\nparameters:\n"), model_text.index("\nend of parameters")
    section = model_text[start:end]
    return dict(re.findall(r"^\[(\w+): (.*)\]$", section, re.M))


def assert_recorded(params: dict[str, str], name: str, value) -> None:
    got = params[CANONICAL[name]]
    if isinstance(value, bool):
        assert got == str(int(value)), (name, got)
    elif isinstance(value, str):
        assert got == value, (name, got)
    else:
        assert math.isclose(float(got), value, rel_tol=1e-6), (name, got, value)


def test_lightgbm_trains_with_every_bound_as_given():
    """Each bound is a value LightGBM takes and keeps (not refuses, not silently changes)."""
    rng = np.random.default_rng(0)
    X = rng.random((300, 3))
    y = (X[:, 0] + rng.normal(0, 0.3, 300) > 0.5).astype(int)
    companions = {"subsample": {"bagging_freq": 1},  # what makes each one take effect
                  "monotone_constraints_method": {"monotone_constraints": [1, 0, 0]}}
    found = bounds()
    assert set(found) == set(TRAINING_PARAMS)
    for name, values in found.items():
        for value in values:
            params = {"objective": "binary", "verbose": -1, "num_threads": 1, name: value,
                      **companions.get(name, {})}
            booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=2)
            assert_recorded(recorded(booster.model_to_string()), name, value)


class _Features(msgspec.Struct):
    a: float


def test_a_requests_parameters_win_over_the_familys_whatever_alias_it_uses():
    family = ModelFamily(name="t.f", features=_Features, label="y", params={
        "min_data_in_leaf": 50, "scale_pos_weight": 3.0, "seed": 1, "max_bin": 31})
    chosen = TrainingParams(min_child_samples=5, is_unbalance=True)
    request = TrainModel(family="t.f", seed=7, params=chosen)
    params = lightgbm_params(family, request)
    assert params["min_child_samples"] == 5 and "min_data_in_leaf" not in params
    assert params["is_unbalance"] is True and "scale_pos_weight" not in params
    assert params["random_state"] == 7 and "seed" not in params
    assert params["max_bin"] == 31 and params["objective"] == "binary"
    assert params["num_threads"] == os.cpu_count()
    # Without a request's say the family's own values stand.
    assert lightgbm_params(family, TrainModel(family="t.f"))["scale_pos_weight"] == 3.0


async def test_refused_parameters_through_both_ways_of_queueing(client, worker, make_tenant):
    t = await make_tenant()
    for name, params in ATTACKS.items():
        body = error_of(await client.post(TRAIN, json={"params": params}, headers=t.headers))
        assert body["field"] == f"$.params.{name}", body
        assert all(accepted in body["message"] for accepted in TRAINING_PARAMS), body["message"]
        body = error_of(await queue_job(client, t.headers, {"params": params}))
        # msgspec names the object holding an unknown key; the key is in the field or the message.
        assert body["field"].startswith("$.payload.params"), body
        assert name in body["field"] + body["message"], body
    for name in DANGEROUS:  # every alias, as a string and as a number
        for value in ("x", 1):
            r = await client.post(TRAIN, json={"params": {name: value}}, headers=t.headers)
            body = error_of(r)
            assert body["field"] == f"$.params.{name}", body
            body = error_of(await queue_job(client, t.headers, {"params": {name: value}}))
            assert name in body["field"] + body["message"], body
    jobs = (await client.get("/v1/jobs", headers=t.headers)).json()["items"]
    assert jobs == [], "nothing was queued"

    # Training goes on, for this tenant and for others.
    for tenant in (t, await make_tenant()):
        request = {"num_boost_round": 30, "options": {"rows": 600}}
        r = await client.post(TRAIN, json=request, headers=tenant.headers)
        assert r.status_code == 202, r.text
        await worker()
        job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=tenant.headers)).json()
        assert job["state"] == "succeeded", job


@pytest.mark.parametrize(("body", "field"), OUT_OF_BOUNDS, ids=[f for _, f in OUT_OF_BOUNDS])
async def test_out_of_bounds_values_are_refused_with_their_field(client, tenant, body, field):
    assert error_of(await client.post(TRAIN, json=body, headers=tenant.headers))["field"] == field
    queued = await queue_job(client, tenant.headers, body)
    assert error_of(queued)["field"] == "$.payload" + field[1:]


async def test_a_model_too_large_to_export_is_refused(client, tenant):
    largest = {"family": FAMILY, "params": {"num_leaves": 1024}, "num_boost_round": 1024}
    assert msgspec.convert(largest, TrainModel).num_boost_round * 1024 == MAX_MODEL_LEAVES
    body = {"params": {"num_leaves": 1024}, "num_boost_round": 1025}
    r = await client.post(TRAIN, json=body, headers=tenant.headers)
    assert error_of(r)["field"] == "$" and f"{MAX_MODEL_LEAVES:,} leaves" in r.json()["message"]
    r = await queue_job(client, tenant.headers, body)
    assert f"{MAX_MODEL_LEAVES:,} leaves" in error_of(r)["message"]
    # Without num_leaves the family's own (trusted) value decides, whatever the rounds.
    assert msgspec.convert({"family": FAMILY, "num_boost_round": 20_000}, TrainModel)


async def test_every_accepted_parameter_reaches_lightgbm(client, worker, make_tenant, state):
    t = await make_tenant()
    common = {"num_boost_round": 60, "options": {"rows": 1500}}
    first = await client.post(TRAIN, json={"params": FIRST, **common}, headers=t.headers)
    second = await queue_job(client, t.headers, {"params": SECOND, "seed": 2**31 - 1, **common})
    assert first.status_code == 202 and second.status_code == 202, (first.text, second.text)
    await worker()
    store = state.tenant_store(t.id)
    for r, params in ((first, FIRST), (second, SECOND)):
        job = (await client.get(f"/v1/jobs/{r.json()['id']}", headers=t.headers)).json()
        assert job["state"] == "succeeded", job
        prefix = f"models/{FAMILY}/{job['result']['version']}/"
        in_model = recorded((await store.get(prefix + "model.txt")).decode())
        in_version = msgspec.json.decode(await store.get(prefix + "version.json"))["params"]
        for name, value in params.items():
            assert_recorded(in_model, name, value)
            assert in_version[name] == value, (name, in_version.get(name))
    # The second run's (queued through /v1/jobs) model, beyond its parameters:
    assert in_model["seed"] == str(2**31 - 1) and in_version["random_state"] == 2**31 - 1
    assert in_model["monotone_constraints"] == "0,1,0,0,0,0", "the family's own constraint applies"
    assert in_model["scale_pos_weight"] == "1", "the default, not sent with is_unbalance"
    assert in_model["num_threads"] == str(os.cpu_count()), "the server's choice"
