"""Recorded histories must replay on today's workflow code: any unguarded change fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.client import DATA_CONVERTER
from workflows.canary import CanaryDeployment
from workflows.restore import RestoreRelease
from workflows.supersede import SupersedeDeployment

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 3


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(
        workflows=[CanaryDeployment, RestoreRelease, SupersedeDeployment],
        data_converter=DATA_CONVERTER,
    )
    await replayer.replay_workflow(history)
