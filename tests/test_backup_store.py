"""Router backups on disk: written with a checksummed manifest, verified on read, and never
the only copy (the workflow history keeps the state too)."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.backup_store import (
    MANIFEST_FILE,
    STATE_FILE,
    BackupUnreadable,
    check_writable,
    list_backups,
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


# --- listing the store -------------------------------------------------------------------


def set_created_at(record: BackupRecord, moment: datetime | str) -> None:
    """Rewrite a backup's manifest timestamp (the manifest itself carries no checksum)."""
    path = Path(record.path) / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["created_at"] = moment if isinstance(moment, str) else moment.isoformat()
    path.write_text(json.dumps(manifest))


def test_list_backups_newest_first(tmp_path: Path) -> None:
    # Names sort differently from dates, so only created_at can give this order.
    dates = {
        "run-a": datetime(2024, 1, 1, tzinfo=UTC),
        "run-b": datetime(2024, 3, 1, tzinfo=UTC),
        "run-c": datetime(2024, 2, 1, tzinfo=UTC),
    }
    for name, moment in dates.items():
        set_created_at(write_backup(str(tmp_path), "checkout", name, STATE), moment)

    entries = list_backups(str(tmp_path), "checkout")

    assert [(e.id, e.created_at) for e in entries] == [
        ("run-b", dates["run-b"]),
        ("run-c", dates["run-c"]),
        ("run-a", dates["run-a"]),
    ]
    assert all(entry.verified and entry.problem is None for entry in entries)
    assert all(entry.state == STATE for entry in entries)


def test_list_backups_only_lists_the_service(tmp_path: Path, record: BackupRecord) -> None:
    write_backup(str(tmp_path), "payments", "run-9", STATE)

    assert [entry.id for entry in list_backups(str(tmp_path), "checkout")] == ["run-1"]


def test_tampered_backup_is_listed_unverified(tmp_path: Path, record: BackupRecord) -> None:
    tamper(record)

    [entry] = list_backups(str(tmp_path), "checkout")

    assert entry.id == "run-1"
    assert entry.path == record.path
    assert entry.verified is False
    assert entry.sha256 == record.sha256
    assert entry.created_at is not None
    assert entry.state is None
    assert entry.problem is not None and "sha256" in entry.problem


def test_folder_without_manifest_is_listed_unverified(tmp_path: Path, record: BackupRecord) -> None:
    (tmp_path / "checkout" / "stray").mkdir()

    entries = list_backups(str(tmp_path), "checkout")

    assert [(e.id, e.verified) for e in entries] == [("run-1", True), ("stray", False)]
    stray = entries[1]
    assert stray.created_at is None
    assert stray.sha256 is None
    assert stray.state is None
    assert stray.problem is not None and stray.problem.startswith("manifest unreadable")


def test_files_beside_the_backups_are_not_listed(tmp_path: Path, record: BackupRecord) -> None:
    (tmp_path / "checkout" / "notes.txt").write_text("not a backup")

    assert [entry.id for entry in list_backups(str(tmp_path), "checkout")] == ["run-1"]


def test_missing_service_directory_lists_nothing(tmp_path: Path) -> None:
    assert list_backups(str(tmp_path), "checkout") == []
    assert list_backups(str(tmp_path / "absent"), "checkout") == []


def test_manifest_without_timezone_does_not_break_the_listing(
    tmp_path: Path, record: BackupRecord
) -> None:
    other = write_backup(str(tmp_path), "checkout", "run-2", STATE)
    set_created_at(other, "2024-01-01T00:00:00")

    entries = list_backups(str(tmp_path), "checkout")

    assert sorted(entry.id for entry in entries) == ["run-1", "run-2"]


def test_verified_entry_gives_the_written_record(tmp_path: Path, record: BackupRecord) -> None:
    [entry] = list_backups(str(tmp_path), "checkout")

    assert entry.record() == record
    assert read_backup(entry.record()) == STATE


def test_unverified_entry_has_no_record(tmp_path: Path, record: BackupRecord) -> None:
    tamper(record)
    [entry] = list_backups(str(tmp_path), "checkout")

    with pytest.raises(ValueError, match="run-1 does not verify"):
        entry.record()


# --- checking the store is writable ------------------------------------------------------


def test_check_writable_creates_the_service_folder(tmp_path: Path) -> None:
    folder = check_writable(str(tmp_path / "backups"), "checkout")

    assert folder == tmp_path / "backups" / "checkout"
    assert folder.is_dir()
    assert list(folder.iterdir()) == []


def test_check_writable_leaves_existing_backups_alone(tmp_path: Path, record: BackupRecord) -> None:
    folder = check_writable(str(tmp_path), "checkout")

    assert [p.name for p in folder.iterdir()] == ["run-1"]
    assert read_backup(record) == STATE


needs_permissions = pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")


@needs_permissions
def test_check_writable_fails_under_a_read_only_directory(tmp_path: Path) -> None:
    store = tmp_path / "backups"
    store.mkdir(mode=0o500)
    try:
        with pytest.raises(OSError):
            check_writable(str(store), "checkout")
        assert not (store / "checkout").exists()
    finally:
        store.chmod(0o700)


@needs_permissions
def test_check_writable_fails_in_a_read_only_service_folder(tmp_path: Path) -> None:
    folder = tmp_path / "checkout"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(OSError):
            check_writable(str(tmp_path), "checkout")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)
