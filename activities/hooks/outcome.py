"""What running one hook found, before the activity names and times it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ran:
    """A hook's outcome; `attempts` is 0 when it could not even start."""

    ok: bool
    detail: str
    output: str = ""
    status: int | None = None
    attempts: int = 1
