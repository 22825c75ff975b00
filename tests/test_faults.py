"""Faults on the real stack, through the same code as `python -m bench.faults`.

Each scenario of bench.fault_scenarios runs twice (a healthy canary, then a faulty one)
with seed 1: workers, the dev server and Envoy SIGKILLed, kills inside backup, shift and
rollback, Envoy's admin API and stats cut, no traffic, the canary dying. Every deployment
must end as the scenario expects, with Envoy's real state matching: promoted with Envoy
on the canary or rolled back with Envoy on stable, never lost. The bench runs more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.fault_rig import Rig, open_rig
from bench.fault_scenarios import SCENARIOS
from bench.faults import row, run_scenario

pytestmark = pytest.mark.e2e
RUNS = 2
SEED = 1


@pytest.fixture(scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    """A dev server of its own (it is killed), Envoy, v1 and v2, load; workers per test."""
    async with open_rig(tmp_path_factory.mktemp("faults")) as rig:
        yield rig


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_every_deployment_ends_correct_despite_the_fault(rig: Rig, scenario: str) -> None:
    runs = await run_scenario(rig, scenario, RUNS, SEED)
    healthy_ends = SCENARIOS[scenario].healthy_ends
    assert [r.outcome for r in runs] == [healthy_ends, "rolled_back"], [r.reason for r in runs]
    wrong = [row(r) for r in runs if r.verdict != "correct"]
    assert not wrong, "\n".join(wrong)
