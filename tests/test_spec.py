"""Deployment spec validation: the defaults, the file formats, and every bad input named."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.scripted import make_spec, spec_data
from sluicegate.errors import SpecError
from sluicegate.spec import DeploymentSpec, MetricCheck, load_spec, parse_spec

MINIMAL: dict[str, Any] = spec_data()

MINIMAL_YAML = """\
service: checkout
stable: {version: v1, address: "127.0.0.1:18080"}
canary: {version: v2, address: "127.0.0.1:18081"}
router:
  type: envoy
  admin_url: http://127.0.0.1:19901
  endpoints_dir: /nonexistent
analysis:
  source: {type: envoy, admin_url: "http://127.0.0.1:19901"}
"""


def spec_with(**changes: Any) -> dict[str, Any]:
    """The minimal spec with top-level fields replaced (None deletes the field)."""
    data = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def problems_of(data: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return caught.value.problems


def one_problem(data: Any) -> str:
    found = problems_of(data)
    assert len(found) == 1, found
    return found[0]


def stages(*entries: tuple[str, int, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "weight": weight, "bake": bake} for name, weight, bake in entries]


# --- valid specs and files ---------------------------------------------------------------


def test_minimal_yaml_spec_gets_the_default_plan(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(MINIMAL_YAML)

    spec = load_spec(path)

    assert [(s.name, s.weight, s.bake, s.manual_gate) for s in spec.stages] == [
        ("canary", 5, timedelta(minutes=30), False),
        ("pilot", 25, timedelta(minutes=60), False),
        ("gradual", 50, timedelta(minutes=120), False),
    ]
    assert spec.analysis.interval == timedelta(seconds=10)
    assert spec.analysis.metrics == (
        MetricCheck(metric="error_rate", max=0.01),
        MetricCheck(metric="latency_p99_ms", max=200),
        MetricCheck(metric="availability", min=0.999, window="stage"),
    )
    assert spec.workflow_id == "deploy-checkout"


def test_json_file_loads_the_same_spec_as_yaml(tmp_path: Path) -> None:
    yaml_path = tmp_path / "spec.yaml"
    yaml_path.write_text(MINIMAL_YAML)
    json_path = tmp_path / "spec.json"
    json_path.write_text(json.dumps(MINIMAL))

    assert load_spec(json_path) == load_spec(yaml_path)


def test_durations_accept_iso_8601_and_plain_seconds() -> None:
    data = spec_with(stages=[{"name": "only", "weight": 10, "bake": "PT30S"}])
    data["analysis"]["interval"] = 2.5

    spec = parse_spec(data)

    assert spec.stages[0].bake == timedelta(seconds=30)
    assert spec.analysis.interval == timedelta(seconds=2.5)

    data = spec_with(stages=[{"name": "only", "weight": 10, "bake": 90}])
    data["analysis"]["interval"] = "PT1M"
    spec = parse_spec(data)
    assert spec.stages[0].bake == timedelta(seconds=90)
    assert spec.analysis.interval == timedelta(minutes=1)


def test_manual_gate_alone_is_enough_to_hold_a_stage() -> None:
    spec = parse_spec(spec_with(stages=[{"name": "gate", "weight": 10, "manual_gate": True}]))
    assert spec.stages[0].bake == timedelta(0)
    assert spec.stages[0].manual_gate


def test_admin_url_trailing_slash_is_dropped() -> None:
    data = spec_with()
    data["router"]["admin_url"] = "http://127.0.0.1:19901/"
    assert parse_spec(data).router.admin_url == "http://127.0.0.1:19901"


def test_spec_round_trips_through_json() -> None:
    """`temporal workflow start --input-file` hands the workflow the JSON dump."""
    spec = make_spec(
        stages=[
            {"name": "one", "weight": 1, "bake": "PT0.5S"},
            {"name": "two", "weight": 40, "manual_gate": True},
            {"name": "all", "weight": 100, "bake": 3600, "manual_gate": True},
        ],
    )

    again = parse_spec(json.loads(spec.model_dump_json()))

    assert again == spec
    assert isinstance(again, DeploymentSpec)


def test_default_spec_round_trips_through_json() -> None:
    spec = make_spec()
    assert parse_spec(json.loads(spec.model_dump_json())) == spec


# --- bad stages --------------------------------------------------------------------------


def test_weights_must_increase() -> None:
    problem = one_problem(spec_with(stages=stages(("a", 20, 60), ("b", 20, 60))))
    assert problem.startswith("stages:")
    assert "weights must increase" in problem
    assert "'b'" in problem and "'a'" in problem


def test_weight_above_100_is_rejected() -> None:
    problem = one_problem(spec_with(stages=stages(("a", 101, 60))))
    assert problem.startswith("stages.0.weight:")
    assert "100" in problem


def test_weight_zero_is_rejected() -> None:
    problem = one_problem(spec_with(stages=stages(("a", 0, 60))))
    assert problem.startswith("stages.0")
    assert "1-100" in problem


def test_negative_bake_is_rejected() -> None:
    problem = one_problem(spec_with(stages=stages(("a", 10, -5))))
    assert problem.startswith("stages.0.bake:")
    assert "negative" in problem


def test_stage_needs_bake_or_manual_gate() -> None:
    problem = one_problem(spec_with(stages=[{"name": "idle", "weight": 10}]))
    assert problem.startswith("stages.0")
    assert "bake" in problem and "manual_gate" in problem


def test_stage_names_must_be_unique() -> None:
    problem = one_problem(spec_with(stages=stages(("a", 10, 60), ("a", 20, 60))))
    assert problem.startswith("stages:")
    assert "unique" in problem


def test_stages_must_not_be_empty() -> None:
    problem = one_problem(spec_with(stages=[]))
    assert problem.startswith("stages:")
    assert "at least one stage" in problem


# --- bad router, versions, service -------------------------------------------------------


def test_unknown_router_type_names_the_valid_one() -> None:
    data = spec_with()
    data["router"]["type"] = "istio"
    assert (
        one_problem(data)
        == "router.type: unknown type 'istio'; valid: envoy, haproxy, nginx, webhook"
    )
    del data["router"]["type"]
    assert one_problem(data) == "router.type: required; valid: envoy, haproxy, nginx, webhook"


def test_a_known_router_type_names_its_own_missing_fields() -> None:
    data = spec_with()
    data["router"] = {"type": "haproxy", "runtime_api": "/run/haproxy.sock"}
    assert one_problem(data) == "router.backend: Field required"


def test_missing_canary_address() -> None:
    data = spec_with()
    del data["canary"]["address"]
    problem = one_problem(data)
    assert problem.startswith("canary:")
    assert "address required" in problem


def test_a_version_with_several_addresses() -> None:
    data = spec_with()
    data["stable"] = {"version": "v1", "addresses": ["10.0.0.1:80", "10.0.0.2:80"]}
    spec = DeploymentSpec.model_validate(data)
    assert spec.stable.endpoints == ("10.0.0.1:80", "10.0.0.2:80")


def test_address_and_addresses_together_are_refused() -> None:
    data = spec_with()
    data["canary"]["addresses"] = ["10.0.0.9:80"]
    assert "not both" in one_problem(data)


def test_a_canary_sharing_a_stable_address_is_refused() -> None:
    data = spec_with()
    data["canary"] = {"version": "v2", "addresses": ["10.0.0.9:80", data["stable"]["address"]]}
    assert "must differ" in one_problem(data)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:70000", "127.0.0.1:0", "a b:80"])
def test_bad_address(address: str) -> None:
    data = spec_with()
    data["canary"]["address"] = address
    problem = one_problem(data)
    assert problem.startswith("canary.address:")
    assert "host:port" in problem and "1-65535" in problem


def test_canary_address_must_differ_from_stable() -> None:
    data = spec_with()
    data["canary"]["address"] = data["stable"]["address"]
    problem = one_problem(data)
    assert "canary's addresses must differ from stable's" in problem
    assert "127.0.0.1:18080" in problem


@pytest.mark.parametrize("service", ["Checkout", "-checkout", "check out", "", "a" * 64])
def test_bad_service_name(service: str) -> None:
    problem = one_problem(spec_with(service=service))
    assert problem.startswith("service:")
    assert "a-z" in problem


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:9901", "127.0.0.1:9901", "http://"])
def test_admin_url_must_be_http(url: str) -> None:
    data = spec_with()
    data["router"]["admin_url"] = url
    problem = one_problem(data)
    assert problem.startswith("router.admin_url:")
    assert "http(s) URL" in problem


def test_unknown_top_level_field() -> None:
    problem = one_problem(spec_with(stagse=[]))
    assert problem.startswith("stagse:")
    assert "unknown field" in problem


def test_unknown_nested_field() -> None:
    data = spec_with()
    data["router"]["admin"] = "http://x:1"
    assert one_problem(data).startswith("router.admin:")


# --- bad analysis ------------------------------------------------------------------------


def with_metrics(*metrics: dict[str, Any]) -> dict[str, Any]:
    data = spec_with()
    data["analysis"]["metrics"] = list(metrics)
    return data


@pytest.mark.parametrize(
    "metric",
    [
        {"metric": "error_rate", "max": 0.01, "min": 0.001},
        {"metric": "error_rate"},
    ],
    ids=["both", "neither"],
)
def test_metric_needs_exactly_one_bound(metric: dict[str, Any]) -> None:
    problem = one_problem(with_metrics(metric))
    assert problem.startswith("analysis.metrics.0:")
    assert "exactly one of max or min" in problem


def test_error_rate_bound_is_a_fraction() -> None:
    problem = one_problem(with_metrics({"metric": "error_rate", "max": 5}))
    assert problem.startswith("analysis.metrics.0:")
    assert "between 0 and 1" in problem


def test_unknown_metric_names_the_valid_ones() -> None:
    problem = one_problem(with_metrics({"metric": "latency_p95_ms", "max": 100}))
    assert problem.startswith("analysis.metrics.0.metric:")
    assert "latency_p99_ms" in problem


def test_metrics_must_not_be_empty() -> None:
    assert one_problem(with_metrics()).startswith("analysis.metrics:")


@pytest.mark.parametrize("interval", [0.05, "PT0.01S", 0])
def test_interval_below_a_tenth_of_a_second(interval: Any) -> None:
    data = spec_with()
    data["analysis"]["interval"] = interval
    problem = one_problem(data)
    assert problem.startswith("analysis.interval:")
    assert "at least 0.1 s" in problem


def test_every_problem_is_reported_at_once() -> None:
    data = spec_with(service="Bad Name", stages=stages(("a", 150, 60)), extra=1)
    data["router"]["type"] = "istio"
    data["canary"]["address"] = "nowhere"
    data["analysis"]["interval"] = 0.01

    with pytest.raises(SpecError) as caught:
        parse_spec(data)

    fields = sorted(problem.split(":", 1)[0] for problem in caught.value.problems)
    assert fields == [
        "analysis.interval",
        "canary.address",
        "extra",
        "router.type",
        "service",
        "stages.0.weight",
    ]
    for problem in caught.value.problems:
        assert problem in str(caught.value)


def test_spec_that_is_not_a_mapping() -> None:
    assert problems_of(["service"])


# --- load_spec errors --------------------------------------------------------------------


def load_problem(path: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert len(caught.value.problems) == 1, caught.value.problems
    problem = caught.value.problems[0]
    assert str(path) in problem
    return problem


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in load_problem(tmp_path / "absent.yaml")


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("service: [checkout\nstable: {")
    problem = load_problem(path)
    assert "not valid yaml" in problem and "(line 2, column" in problem
    assert "\n" not in problem  # one line, not YAML's excerpt of the file


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text("{'service': 'checkout'}")
    assert "not valid json" in load_problem(path)


@pytest.mark.parametrize("text", ["- service: checkout\n", "", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    assert "mapping" in load_problem(path)


def test_load_spec_reports_field_problems(tmp_path: Path) -> None:
    data = spec_with()
    data["router"]["type"] = "istio"
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert [p.split(":", 1)[0] for p in caught.value.problems] == ["router.type"]


# --- problems hidden behind other problems -----------------------------------------------


def test_canary_equal_to_stable_is_reported_with_other_problems() -> None:
    data = spec_with(service="Bad")
    data["canary"]["address"] = data["stable"]["address"]
    found = problems_of(data)
    assert any(p.startswith("service:") for p in found)
    assert any("canary's addresses must differ from stable's" in p for p in found)


def test_non_increasing_weights_and_duplicate_names_are_both_reported() -> None:
    found = problems_of(spec_with(stages=stages(("a", 20, 60), ("a", 10, 60))))
    assert any("weights must increase" in p for p in found)
    assert any("unique" in p for p in found)


def _fleet(*instances: dict[str, Any]) -> dict[str, Any]:
    return {"type": "haproxy", "backend": "web", "instances": list(instances)}


def test_a_router_fleet_shares_its_top_level_fields() -> None:
    data = spec_with()
    data["router"] = _fleet(
        {"name": "lb-a", "runtime_api": "127.0.0.1:9001"},
        {"name": "lb-b", "runtime_api": "127.0.0.1:9002", "task_queue": "host-b"},
    )
    router = DeploymentSpec.model_validate(data).router
    fleet = router.fleet()
    assert [(each.label(), each.runtime_api, each.task_queue) for each in fleet] == [
        ("lb-a", "127.0.0.1:9001", None),
        ("lb-b", "127.0.0.1:9002", "host-b"),
    ]
    assert {each.backend for each in fleet} == {"web"}
    assert type(router).model_validate(router.model_dump()) == router


def test_one_router_is_a_fleet_of_one() -> None:
    router = DeploymentSpec.model_validate(spec_with()).router
    assert router.fleet() == (router,)


@pytest.mark.parametrize(
    ("instances", "problem"),
    [
        (
            [{"runtime_api": "127.0.0.1:1"}, {"runtime_api": "127.0.0.1:2"}],
            "router: instances: give each instance a unique name, got [None, None]",
        ),
        ([{"name": "a"}], "router.instances.0.runtime_api: Field required"),
        (
            [{"name": "a", "runtime_api": "x", "instances": [{"name": "b", "runtime_api": "y"}]}],
            "router: instances: an instance cannot have instances of its own",
        ),
    ],
)
def test_a_bad_fleet_names_the_instance(instances: list[dict[str, Any]], problem: str) -> None:
    data = spec_with()
    data["router"] = _fleet(*instances)
    assert one_problem(data) == problem
