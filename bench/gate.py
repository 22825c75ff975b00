"""A TCP gate in front of a real endpoint, to take it away on cue: network faults.

`pass` forwards every byte both ways; `refuse` closes every connection at once (the peer
reads a reset or an empty answer, as from a crashed or firewalled admin port); `stall`
holds connections open without forwarding a byte (the peer's timeouts fire, as with a
hung process or a black-holed route). Changing the mode cuts the connections already
open, so no request slips through a gate that has just closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

GateMode = Literal["pass", "refuse", "stall"]
CHUNK = 65536


class Gate:
    """Listens on a free loopback port and forwards to `target_port` while in `pass` mode."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode: GateMode = "pass"
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> Gate:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "the gate is not started"
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: GateMode) -> None:
        """Switch mode; connections opened under the previous mode are cut."""
        self.mode = mode
        for writer in list(self._open):
            writer.close()
        self._open.clear()

    async def close(self) -> None:
        self.set("refuse")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        self._open.add(writer)
        try:
            if self.mode == "stall":
                await reader.read()  # until the peer gives up or the mode changes
                return
            await self._forward(reader, writer)
        except (ConnectionError, OSError):
            pass  # either side went away: the client sees the connection end
        finally:
            self._open.discard(writer)
            writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._open.add(upstream_writer)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            self._open.discard(upstream_writer)
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the other side."""
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
