"""Bad input never crashes and never reaches a workflow: property-based fuzzing of spec
parsing, CLI arguments and chat-ops commands (issue 7, bad input)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.scripted import spec_data
from frontends.chatops.commands import Command, UsageError, parse
from frontends.client.history import checked_service
from sluicegate.contracts import MAX_REASON
from sluicegate.errors import SpecError
from sluicegate.spec import DeploymentSpec, parse_spec
from workflows.canary import _validated

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = ["service", "stable", "canary", "router", "analysis", "stages", "backup"]


def mutated(base: dict[str, Any], paths: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """`base` with the value at each path replaced (created when missing)."""
    data = json.loads(json.dumps(base))
    for path, value in paths:
        target = data
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[path[-1]] = value
    return data


PATHS = st.sampled_from(
    [
        ["service"], ["stable", "address"], ["canary", "version"], ["router", "type"],
        ["router", "admin_url"], ["analysis", "interval"], ["analysis", "mode"],
        ["analysis", "metrics"], ["analysis", "source"], ["analysis", "business"],
        ["analysis", "sequential", "alpha"], ["analysis", "min_requests"], ["stages"],
        ["backup", "directory"], ["unknown_field"],
    ]
)  # fmt: skip


def outcome(data: Any) -> DeploymentSpec | SpecError:
    """parse_spec's answer: a spec or a SpecError; anything else fails the test."""
    try:
        return parse_spec(data)
    except SpecError as err:
        return err


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_any_json_is_a_spec_or_a_clear_error(data: Any) -> None:
    result = outcome(data)
    if isinstance(result, SpecError):
        assert result.problems and all(": " in problem for problem in result.problems)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(PATHS, JSON), min_size=1, max_size=3))
def test_near_valid_specs_are_refused_by_field_or_accepted_by_the_workflow(
    changes: list[tuple[list[str], Any]],
) -> None:
    data = mutated(spec_data(), changes)
    result = outcome(data)
    if isinstance(result, SpecError):
        named = {problem.split(":")[0].split(".")[0] for problem in result.problems}
        assert named <= {*FIELDS, "spec", "unknown_field"}, result.problems
        assert all(problem.split(":")[0] for problem in result.problems)
        return
    # A spec that parses is one the workflow accepts, as typed input and as JSON (the
    # `temporal workflow start --input-file` path), and it survives the round trip.
    assert _validated(result) == (result, None)
    assert _validated(json.loads(result.model_dump_json())) == (result, None)


@settings(max_examples=2000)
@given(st.text(max_size=80))
def test_a_service_argument_is_valid_or_refused_naming_it(name: str) -> None:
    try:
        assert checked_service(name) == name
    except SpecError as err:
        assert err.problems[0].startswith("SERVICE: ")


SLASH_WORDS = st.sampled_from(
    ["status", "promote", "abort", "pause", "resume", "rollback", "help", "--full", "--force",
     "checkout", "Checkout", "a" * 70, "&amp;", "<@U1>", "", "\u200b", "x" * 2100]
)  # fmt: skip


@settings(max_examples=3000)
@given(st.one_of(st.text(max_size=200), st.lists(SLASH_WORDS, max_size=6).map(" ".join)))
def test_a_slash_command_is_understood_or_refused_with_usage(text: str) -> None:
    try:
        command = parse(text)
    except UsageError as err:
        assert str(err)  # says what is wrong
        return
    assert isinstance(command, Command)
    assert checked_service(command.service) == command.service
    assert not command.full or command.action == "promote"
    assert len(command.reason) <= MAX_REASON
