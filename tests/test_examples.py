"""The example specs in deploy/examples: valid, the same in YAML and JSON, JSON round-trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload

from sluicegate.spec import DEFAULT_STAGES, AnalysisSpec, DeploymentSpec, load_spec, parse_spec
from workers.client import DATA_CONVERTER
from workflows.canary import SpecInput

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
YAML_SPEC = EXAMPLES / "checkout.yaml"
JSON_SPEC = EXAMPLES / "checkout.json"


def test_both_examples_load() -> None:
    for path in (YAML_SPEC, JSON_SPEC):
        assert isinstance(load_spec(path), DeploymentSpec), path


def test_yaml_and_json_examples_are_the_same_spec() -> None:
    assert load_spec(YAML_SPEC) == load_spec(JSON_SPEC)


def test_json_example_round_trips() -> None:
    spec = load_spec(JSON_SPEC)

    assert parse_spec(json.loads(spec.model_dump_json())) == spec


def test_json_example_is_written_as_the_model_writes_it() -> None:
    """Every value the file gives is in the form `model_dump_json` produces (e.g. PT1H)."""
    written = json.loads(JSON_SPEC.read_text())
    dumped = json.loads(load_spec(JSON_SPEC).model_dump_json())

    assert _differences(written, dumped) == []


def test_json_example_reaches_the_workflow_as_a_typed_spec() -> None:
    """`temporal workflow start --input-file` sends the file's bytes as a json/plain payload."""
    payload = Payload(metadata={"encoding": b"json/plain"}, data=JSON_SPEC.read_bytes())

    decoded = DATA_CONVERTER.payload_converter.from_payload(payload, SpecInput)

    assert isinstance(decoded, DeploymentSpec)
    assert decoded == load_spec(YAML_SPEC)


def test_examples_spell_out_the_default_plan_with_one_manual_gate() -> None:
    spec = load_spec(YAML_SPEC)

    assert [(s.name, s.weight, s.bake) for s in spec.stages] == [
        (s.name, s.weight, s.bake) for s in DEFAULT_STAGES
    ]
    assert [s.manual_gate for s in spec.stages] == [False, False, True]
    assert spec.analysis == AnalysisSpec(source=spec.analysis.source)


def _differences(given: Any, dumped: Any, where: str = "spec") -> list[str]:
    """Places where `given` has a value that differs from `dumped` (extra keys in `dumped` ok)."""
    if isinstance(given, dict) and isinstance(dumped, dict):
        return [
            problem
            for key, value in given.items()
            for problem in (
                _differences(value, dumped[key], f"{where}.{key}")
                if key in dumped
                else [f"{where}.{key}: not in the dump"]
            )
        ]
    if isinstance(given, list) and isinstance(dumped, list) and len(given) == len(dumped):
        return [
            problem
            for index, (a, b) in enumerate(zip(given, dumped, strict=True))
            for problem in _differences(a, b, f"{where}.{index}")
        ]
    return [] if given == dumped else [f"{where}: {given!r} != {dumped!r}"]


def test_every_router_has_an_example_that_loads() -> None:
    routers = {load_spec(path).router.type for path in EXAMPLES.glob("*.yaml")}
    assert routers == {"envoy", "haproxy", "nginx", "webhook"}
