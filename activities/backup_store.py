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

from sluicegate.contracts import BackupRecord, RouterState
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
    path = Path(record.path) / STATE_FILE
    try:
        payload = path.read_bytes()
    except OSError as err:
        raise BackupUnreadable(f"cannot read backup {path}: {err.strerror}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != record.sha256:
        raise BackupUnreadable(f"backup {path} has sha256 {digest}, expected {record.sha256}")
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


def _write_atomically(path: Path, payload: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
