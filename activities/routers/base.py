"""The router interface, and the base class the routers build it from.

Temporal retries activities, so every operation must be idempotent: applying the same
state twice, or restoring the same backup twice, leaves the router exactly as once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Generic, Protocol, TypeVar

from activities.measures import count_router_error
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterUnavailable, SluicegateError


class Router(Protocol):
    async def read_state(self) -> RouterState:
        """Read the weights and upstream endpoints the router is using right now."""
        ...

    async def apply(self, desired: RouterState) -> RouterState:
        """Make the router match `desired` and return what it reads back afterwards.

        Never sends traffic to an endpoint that is in neither the old nor the new state:
        lowers the canary weight before changing endpoints, raises it after.
        Raises RouterUnavailable (retry) or RouterMisconfigured (do not retry).
        """
        ...

    async def restore(self, backup: RouterState) -> RouterState:
        """Put a backed-up state back exactly; returns the read-back state."""
        ...

    def check(self, desired: RouterState) -> None:
        """Raise SpecError if this router could never carry `desired`; changes nothing."""
        ...


Connection = TypeVar("Connection")


class ReadBackRouter(ABC, Generic[Connection]):
    """A Router built from two primitives, read and write; apply verifies by read-back.

    A subclass implements `_connect`, `_read` and `_write` (and `_validate` if it refuses or
    rewrites some states); `read_state`, `apply` and `restore` are the same for all.
    """

    # The read-back error's verb: "<where> reads back <state> after applying <state>".
    asked: ClassVar[str] = "applying"
    # The spec's `type` of this router: the `router` label of its error counter.
    kind: ClassVar[str]

    @property
    @abstractmethod
    def where(self) -> str:
        """The router as error messages name it, e.g. `Envoy at http://127.0.0.1:9901`."""

    @abstractmethod
    def _connect(self) -> AbstractAsyncContextManager[Connection]:
        """What one read or apply holds open: a client, a process, or nothing."""

    @abstractmethod
    async def _read(self, connection: Connection, /) -> RouterState:
        """The routing the router reports now."""

    @abstractmethod
    async def _write(self, connection: Connection, desired: RouterState, /) -> None:
        """Make the router route as `desired`, idempotently, in the order `Router.apply` says."""

    def _validate(self, desired: RouterState) -> RouterState:
        """The state the read-back must match; SpecError, before any change, if unroutable."""
        return desired

    def check(self, desired: RouterState) -> None:
        self._validate(desired)

    async def read_state(self) -> RouterState:
        """Read the weights and upstream endpoints the router is using right now."""
        try:
            async with self._connect() as connection:
                return await self._read(connection)
        except SluicegateError as err:
            count_router_error(self.kind, "read", err)
            raise

    async def apply(self, desired: RouterState) -> RouterState:
        """Write `desired`, read it back, and raise RouterUnavailable if the two differ."""
        try:
            return await self._apply_verified(desired)
        except SluicegateError as err:
            count_router_error(self.kind, "apply", err)
            raise

    async def _apply_verified(self, desired: RouterState) -> RouterState:
        wanted = self._validate(desired)
        async with self._connect() as connection:
            await self._write(connection, wanted)
            after = await self._read(connection)
        if not after.matches(wanted):
            raise RouterUnavailable(
                f"{self.where} reads back {after.describe()} after {self.asked} {wanted.describe()}"
            )
        return after

    async def restore(self, backup: RouterState) -> RouterState:
        """Put a backed-up state back: the same as applying it."""
        return await self.apply(backup)
