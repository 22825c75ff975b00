"""Sluicegate's error tree, organised by what the caller can do about it.

- `SpecError`: the input is wrong; retrying cannot help (non-retryable).
- `RouterMisconfigured`: the router does not look like the spec says; fix it, then retry.
- `RouterUnavailable`, `MetricsUnavailable`: a dependency is down; retrying may help.
- For front ends (CLI, chat-ops): `DeploymentAlreadyRunning`, `DeploymentNotFound`,
  `ControlRefused` (the workflow said no, with its reason) and `NoWorker`.

"No data" is not an error: a metric source returns a sample with no counters and the
judge calls it inconclusive. The `activities.errors.temporal_errors` decorator is the one
place these become Temporal's retryable / non-retryable failures.
"""

from __future__ import annotations


class SluicegateError(Exception):
    """Base of every error Sluicegate raises on purpose."""

    retryable = True


class SpecError(SluicegateError):
    """A deployment spec (or control input) is invalid; each problem names its field."""

    retryable = False

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid deployment spec:\n" + "\n".join(f"  - {p}" for p in problems))


class InvalidArgument(SpecError):
    """A command's argument (not a spec) is invalid: one line naming it, e.g. `SERVICE: ...`."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])
        self.args = (problem,)


class RouterMisconfigured(SluicegateError):
    """The router is reachable but is not set up the way the spec expects."""

    retryable = False


class RouterUnavailable(SluicegateError):
    """The router cannot be reached or did not accept a change; retry."""


class MetricsUnavailable(SluicegateError):
    """The metric source cannot be reached; retry (or count the check as no data)."""


class DeploymentAlreadyRunning(SluicegateError):
    """A deployment of this service is in progress; one at a time per service."""

    retryable = False


class DeploymentNotFound(SluicegateError):
    """No deployment of this service has ever run (or its history has expired)."""

    retryable = False


class ControlRefused(SluicegateError):
    """The deployment refused a control, or there is nothing running to control."""

    retryable = False


class NoWorker(SluicegateError):
    """No worker polls the task queue, so the request would wait for one."""

    retryable = False
