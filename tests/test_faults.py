"""Faults on the real stack, through the same code as `python -m bench.faults`.

Each scenario runs twice (a healthy canary, then a faulty one) with seed 1: the worker
SIGKILLed and replaced, one of two workers SIGKILLed, the dev server SIGKILLed and
restarted on its SQLite file. Every deployment must end promoted with Envoy on the canary
or rolled back with Envoy on stable, never lost. The full bench runs more seeds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.faults import SCENARIOS, Rig, Scenario, open_rig, row, run_scenario

pytestmark = pytest.mark.e2e
RUNS = 2
SEED = 1


@pytest.fixture(scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    """A dev server of its own (it is killed), Envoy, v1 and v2, load; workers per test."""
    async with open_rig(tmp_path_factory.mktemp("faults")) as rig:
        yield rig


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_every_deployment_ends_correct_despite_the_fault(
    rig: Rig, scenario: Scenario
) -> None:
    runs = await run_scenario(rig, scenario, RUNS, SEED)
    assert [r.outcome for r in runs] == ["promoted", "rolled_back"], [r.reason for r in runs]
    wrong = [row(r) for r in runs if r.verdict != "correct"]
    assert not wrong, "\n".join(wrong)
