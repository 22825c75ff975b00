"""Router backups on disk: one directory per deployment with the state, a manifest and sha256."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from sluicegate.contracts import BackupEntry, BackupRecord, RouterState
from sluicegate.errors import SluicegateError

STATE_FILE = "router-state.json"
MANIFEST_FILE = "manifest.json"
log = logging.getLogger(__name__)


class BackupUnreadable(SluicegateError):
    """A backup file is missing or does not match its checksum."""


def write_backup(
    directory: str, service: str, deployment_id: str, state: RouterState
) -> BackupRecord:
    """Write the state and its manifest, then read both back and verify them."""
    folder = Path(directory) / service / deployment_id
    folder.mkdir(parents=True, exist_ok=True)
    payload = state.model_dump_json(indent=2).encode()
    digest = hashlib.sha256(payload).hexdigest()
    _write_atomically(folder / STATE_FILE, payload)
    manifest = {
        "service": service,
        "deployment_id": deployment_id,
        "created_at": datetime.now(UTC).isoformat(),
        "files": {STATE_FILE: digest},
    }
    _write_atomically(folder / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    record = BackupRecord(path=str(folder), sha256=digest, state=state)
    if read_backup(record) != state:
        raise BackupUnreadable(f"backup in {folder} did not read back as written")
    return record


def read_backup(record: BackupRecord) -> RouterState:
    """The backed-up state from disk, verified against the recorded checksum."""
    return _read_verified(Path(record.path), record.sha256)


def _read_verified(folder: Path, sha256: str) -> RouterState:
    path = folder / STATE_FILE
    try:
        payload = path.read_bytes()
    except OSError as err:
        raise BackupUnreadable(f"cannot read backup {path}: {err.strerror}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != sha256:
        raise BackupUnreadable(f"backup {path} has sha256 {digest}, expected {sha256}")
    try:
        return RouterState.model_validate_json(payload)
    except ValidationError as err:
        raise BackupUnreadable(f"backup {path} is not a router state: {err}") from None


def state_to_restore(record: BackupRecord) -> RouterState:
    """The disk backup if it verifies; else the copy kept in the workflow's history."""
    try:
        return read_backup(record)
    except BackupUnreadable as err:
        log.warning("%s; restoring the copy recorded in the workflow history", err)
        return record.state


def list_backups(directory: str, service: str) -> list[BackupEntry]:
    """Every backup of `service`, newest first, each verified against its manifest."""
    folder = Path(directory) / service
    if not folder.is_dir():
        return []
    entries = [_entry(path) for path in folder.iterdir() if path.is_dir()]
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(entries, key=lambda entry: entry.created_at or oldest, reverse=True)


def check_writable(directory: str, service: str) -> Path:
    """Create the service's backup folder and prove a file can be written there."""
    folder = Path(directory) / service
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.")
    os.close(fd)
    os.unlink(probe)
    return folder


def _entry(folder: Path) -> BackupEntry:
    folder_id, path = folder.name, str(folder)
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        created_at = datetime.fromisoformat(manifest["created_at"])
        if created_at.tzinfo is None:  # a hand-written manifest: read its time as UTC
            created_at = created_at.replace(tzinfo=UTC)
        digest = manifest["files"][STATE_FILE]
    except (OSError, ValueError, KeyError, TypeError) as err:
        problem = f"manifest unreadable: {err}"
        return BackupEntry(
            id=folder_id,
            path=path,
            created_at=None,
            sha256=None,
            verified=False,
            problem=problem,
        )
    try:
        state = _read_verified(folder, digest)
    except BackupUnreadable as err:
        return BackupEntry(
            id=folder_id,
            path=path,
            created_at=created_at,
            sha256=digest,
            verified=False,
            problem=str(err),
        )
    return BackupEntry(
        id=folder_id, path=path, created_at=created_at, sha256=digest, verified=True, state=state
    )


def _write_atomically(path: Path, payload: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
