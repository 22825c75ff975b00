"""The one place Sluicegate's error tree becomes Temporal's retryable/non-retryable failures."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from sluicegate.errors import SluicegateError

P = ParamSpec("P")
R = TypeVar("R")


def temporal_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Raise our errors as ApplicationError typed by class name, retryable as declared."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except SluicegateError as err:
            raise ApplicationError(
                str(err), type=type(err).__name__, non_retryable=not err.retryable
            ) from err

    return wrapper
