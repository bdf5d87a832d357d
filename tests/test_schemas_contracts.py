"""Plugins' own contracts in `flywheel schemas` (`register_contracts`): credit's and traces' objects,
named `<plugin>.<Struct>`, and a bad registration refused naming the plugin."""

from __future__ import annotations

import types

import msgspec
import pytest

from flywheel.server import hookimpl
from flywheel.server.app import build_state
from flywheel.server.schemas import ContractError, contract_schemas


def plugin(name: str, **hooks) -> types.SimpleNamespace:
    ns = types.SimpleNamespace(__flywheel_plugin_name__=name, __version__="1.0")
    for hook, fn in hooks.items():
        setattr(ns, hook, hookimpl(fn))
    return ns


class Note(msgspec.Struct, kw_only=True):
    text: str
    stars: int = 0


def test_credit_and_traces_objects_have_schemas(flywheel_settings):
    state = build_state(flywheel_settings, load_entrypoints=True)
    schemas = contract_schemas(state.contributions, state.pm)
    for name in ("credit.RunSpec", "credit.DatasetVersionRead", "credit.FeatureCreate", "credit.RunRead",
                 "credit.ScoreResult", "credit.RunJob", "traces.TraceCreate", "traces.Chunk", "traces.ChainReport"):
        assert name in schemas, name
    spec = schemas["credit.RunSpec"]
    run_spec = spec["$defs"]["RunSpec"]
    assert {"dataset_version_id", "feature_set_version_id", "model_params", "split_policy",
            "evaluation_policy", "artifact_policy"} <= set(run_spec["properties"])
    assert run_spec["additionalProperties"] is False  # the Struct forbids unknown fields; so does its schema
    assert "event.traces.file_edit" in schemas and "IngestResult" in schemas  # beside events and the core's
    assert not any(name.startswith("credit.") for name in contract_schemas(state.contributions))  # no pm: none


def test_a_plugin_contract_is_named_by_plugin_and_struct(flywheel_settings):
    state = build_state(flywheel_settings, [plugin("notes", register_contracts=lambda: [Note, Note])])
    schemas = contract_schemas(state.contributions, state.pm)
    assert schemas["notes.Note"] == msgspec.json.schema(Note)


def test_what_is_not_a_contract_is_refused_naming_the_plugin(flywheel_settings):
    other = type("Note", (msgspec.Struct,), {"__annotations__": {"x": int}})
    for items, message in (([dict], "not a msgspec Struct"), ([Note, other], "two contracts named 'Note'")):
        state = build_state(flywheel_settings, [plugin("broken", register_contracts=lambda items=items: items)])
        with pytest.raises(ContractError, match=f"plugin 'broken'.*{message}"):
            contract_schemas(state.contributions, state.pm)
