"""The router interface: every traffic router implements these three operations.

Temporal retries activities, so every operation must be idempotent: applying the same
state twice, or restoring the same backup twice, leaves the router exactly as once.
"""

from __future__ import annotations

from typing import Protocol

from sluicegate.contracts import RouterState


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
