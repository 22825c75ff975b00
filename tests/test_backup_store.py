"""Router backups on disk: written with a checksummed manifest, verified on read, and never
the only copy (the workflow history keeps the state too)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from activities.backup_store import (
    MANIFEST_FILE,
    STATE_FILE,
    BackupUnreadable,
    read_backup,
    state_to_restore,
    write_backup,
)
from sluicegate.contracts import BackupRecord, RouterState

STATE = RouterState(
    canary_weight=0,
    stable_endpoints=("127.0.0.1:18080",),
    canary_endpoints=("127.0.0.1:18079",),
)


@pytest.fixture
def record(tmp_path: Path) -> BackupRecord:
    return write_backup(str(tmp_path), "checkout", "run-1", STATE)


def test_write_backup_writes_state_and_manifest(tmp_path: Path, record: BackupRecord) -> None:
    folder = tmp_path / "checkout" / "run-1"
    assert record.path == str(folder)
    assert record.state == STATE

    payload = (folder / STATE_FILE).read_bytes()
    assert RouterState.model_validate_json(payload) == STATE
    assert record.sha256 == hashlib.sha256(payload).hexdigest()

    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["service"] == "checkout"
    assert manifest["deployment_id"] == "run-1"
    assert manifest["files"] == {STATE_FILE: record.sha256}
    assert manifest["created_at"]


def test_write_backup_leaves_no_temporary_files(tmp_path: Path, record: BackupRecord) -> None:
    assert sorted(p.name for p in Path(record.path).iterdir()) == [MANIFEST_FILE, STATE_FILE]


def test_read_backup_verifies(record: BackupRecord) -> None:
    assert read_backup(record) == STATE


def tamper(record: BackupRecord) -> None:
    path = Path(record.path) / STATE_FILE
    tampered = STATE.model_copy(update={"canary_weight": 100})
    path.write_text(tampered.model_dump_json(indent=2))


def test_tampered_backup_is_unreadable(record: BackupRecord) -> None:
    tamper(record)
    with pytest.raises(BackupUnreadable, match="sha256"):
        read_backup(record)


def test_tampered_backup_restores_the_recorded_state(record: BackupRecord) -> None:
    tamper(record)
    assert state_to_restore(record) == STATE


def test_wrong_recorded_checksum_is_unreadable(record: BackupRecord) -> None:
    wrong = record.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(BackupUnreadable):
        read_backup(wrong)
    assert state_to_restore(wrong) == STATE


def test_missing_backup_is_unreadable(record: BackupRecord) -> None:
    (Path(record.path) / STATE_FILE).unlink()
    with pytest.raises(BackupUnreadable, match="cannot read"):
        read_backup(record)


def test_missing_backup_restores_the_recorded_state(record: BackupRecord) -> None:
    (Path(record.path) / STATE_FILE).unlink()
    assert state_to_restore(record) == STATE


def test_matching_checksum_but_not_a_router_state_is_unreadable(record: BackupRecord) -> None:
    payload = b'{"not": "a router state"}'
    (Path(record.path) / STATE_FILE).write_bytes(payload)
    forged = record.model_copy(update={"sha256": hashlib.sha256(payload).hexdigest()})
    with pytest.raises(BackupUnreadable, match="not a router state"):
        read_backup(forged)
    assert state_to_restore(forged) == STATE


def test_state_to_restore_prefers_the_disk_copy(record: BackupRecord) -> None:
    # A record whose history copy differs: a verified disk backup wins.
    other = STATE.model_copy(update={"canary_weight": 7})
    assert state_to_restore(record.model_copy(update={"state": other})) == STATE


def test_writing_twice_is_idempotent(tmp_path: Path, record: BackupRecord) -> None:
    again = write_backup(str(tmp_path), "checkout", "run-1", STATE)

    assert again == record
    assert read_backup(again) == STATE
    assert read_backup(record) == STATE
    assert sorted(p.name for p in Path(again.path).iterdir()) == [MANIFEST_FILE, STATE_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["checkout"]
    assert [p.name for p in (tmp_path / "checkout").iterdir()] == ["run-1"]


def test_deployments_get_separate_backups(tmp_path: Path, record: BackupRecord) -> None:
    other_state = STATE.model_copy(update={"canary_weight": 5})
    other = write_backup(str(tmp_path), "checkout", "run-2", other_state)

    assert other.path != record.path
    assert read_backup(other) == other_state
    assert read_backup(record) == STATE
