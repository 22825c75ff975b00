"""HAProxy router: server weights and addresses through the runtime API, never a reload.

HAProxy must have one backend with a server for each arm (default names `stable` and
`canary`), a dynamic balance algorithm (e.g. roundrobin) and an admin-level stats socket
(unix or TCP). The canary percentage w becomes server weights: stable 100 - w, canary w.
See docs/routers/haproxy.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from contextlib import AbstractAsyncContextManager, nullcontext

from activities.routers.base import ReadBackRouter
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable, SpecError
from sluicegate.spec import HAProxyRouter

CONNECT_TIMEOUT = 2.0  # seconds to reach the runtime API
ANSWER_TIMEOUT = 5.0  # seconds for HAProxy to answer one command
# HAProxy's own charset for proxy and server names; anything else could smuggle a second
# command (`;`, newline) onto the admin socket.
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_SET_ADDR_OK = ("IP changed from", "no need to change the addr")


class RuntimeApi:
    """HAProxy's runtime API (the stats socket): one command per connection."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._tcp = _tcp_address(address)

    async def command(self, line: str) -> str:
        """Send one command and return HAProxy's whole answer, stripped."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                if self._tcp is None:
                    reader, writer = await asyncio.open_unix_connection(self.address)
                else:
                    reader, writer = await asyncio.open_connection(*self._tcp)
        except (OSError, TimeoutError) as err:
            raise RouterUnavailable(
                f"HAProxy runtime API {self.address} unreachable: {err!r}"
            ) from err
        try:
            # Non-interactive mode: HAProxy answers the one line, then closes.
            writer.write(line.encode() + b"\n")
            async with asyncio.timeout(ANSWER_TIMEOUT):
                await writer.drain()
                answer = await reader.read()  # until HAProxy closes
        except (OSError, TimeoutError) as err:
            raise RouterUnavailable(
                f"HAProxy runtime API {self.address} failed on `{line}`: {err!r}"
            ) from err
        finally:
            writer.close()
        return answer.decode(errors="replace").strip()


def _tcp_address(address: str) -> tuple[str, int] | None:
    """`host:port` (or `[v6]:port`) for TCP; anything else is a unix socket path."""
    if "/" in address:
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def server_weights(canary_weight: int) -> tuple[int, int]:
    """(stable, canary) server weights for a canary percentage."""
    return 100 - canary_weight, canary_weight


def canary_percent(stable: int, canary: int) -> int:
    """The canary's share of traffic for two server weights, as a whole percentage.

    Any canary traffic reads as at least 1% and any stable traffic as at most 99%, so
    rounding never hides an arm that gets requests. Both at 0 (no traffic at all) reads 0.
    """
    if canary == 0:
        return 0
    if stable == 0:
        return 100
    return min(max(round(100 * canary / (stable + canary)), 1), 99)


def canonical_endpoint(address: str, arm: str) -> str:
    """`IP:port` as HAProxy reports it; host names are refused (`set server addr` takes IPs)."""
    host, _, port = address.rpartition(":")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        if not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(port)
    except ValueError:
        raise SpecError(
            [f"{arm} endpoint {address!r}: HAProxy server addresses need IP:port (no host names)"]
        ) from None
    return _format(str(ip), int(port))


def _format(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _one_endpoint(endpoints: tuple[str, ...], arm: str) -> str:
    if len(endpoints) != 1:
        raise SpecError(
            [
                f"{arm}_endpoints {list(endpoints)}: the HAProxy router steers one server per "
                "arm, so each arm needs exactly one IP:port"
            ]
        )
    return canonical_endpoint(endpoints[0], arm)


class HAProxyRouterClient(ReadBackRouter[None]):
    """Router for one HAProxy backend, steered through the runtime API."""

    def __init__(self, spec: HAProxyRouter) -> None:
        bad = [
            f"router.{field}: {value!r} is not an HAProxy name (letters, digits, _ . : -)"
            for field, value in (
                ("backend", spec.backend),
                ("stable_server", spec.stable_server),
                ("canary_server", spec.canary_server),
            )
            if not _NAME.fullmatch(value)
        ]
        if bad:
            raise SpecError(bad)
        self.spec = spec
        self.api = RuntimeApi(spec.runtime_api)

    @property
    def where(self) -> str:
        return f"HAProxy {self.spec.runtime_api} backend {self.spec.backend!r}"

    def _connect(self) -> AbstractAsyncContextManager[None]:
        return nullcontext()  # one connection per command: RuntimeApi opens them

    def _validate(self, desired: RouterState) -> RouterState:
        """`desired` with one IP:port per arm, as HAProxy reports it."""
        return RouterState(
            canary_weight=desired.canary_weight,
            stable_endpoints=(_one_endpoint(desired.stable_endpoints, "stable"),),
            canary_endpoints=(_one_endpoint(desired.canary_endpoints, "canary"),),
        )

    async def _read(self, _: None) -> RouterState:
        """Weights from `get weight`, addresses from `show servers state`."""
        weights, endpoints = await self._servers()
        stable, canary = self.spec.stable_server, self.spec.canary_server
        return RouterState(
            canary_weight=canary_percent(weights[stable], weights[canary]),
            stable_endpoints=endpoints[stable],
            canary_endpoints=endpoints[canary],
        )

    async def _write(self, _: None, desired: RouterState) -> None:
        """Lower the canary's share, change addresses, raise its share."""
        stable, canary = self.spec.stable_server, self.spec.canary_server
        new = dict(zip((stable, canary), server_weights(desired.canary_weight), strict=True))
        weights, endpoints = await self._servers()
        # What lowers the canary's share goes first (stable up before canary down, so the
        # two are never both 0), addresses change at the lower share, the rest goes last.
        if new[stable] > weights[stable]:
            await self._set_weight(stable, new[stable])
        if new[canary] < weights[canary]:
            await self._set_weight(canary, new[canary])
        for server, endpoint in (
            (stable, desired.stable_endpoints),
            (canary, desired.canary_endpoints),
        ):
            if endpoints[server] != endpoint:
                await self._set_address(server, endpoint[0])
        if new[canary] > weights[canary]:
            await self._set_weight(canary, new[canary])
        if new[stable] < weights[stable]:
            await self._set_weight(stable, new[stable])

    async def _servers(self) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
        """Both servers' weights and addresses (an address-less server has none)."""
        endpoints = await self._endpoints()
        weights = {
            server: await self._weight(server)
            for server in (self.spec.stable_server, self.spec.canary_server)
        }
        return weights, endpoints

    async def _endpoints(self) -> dict[str, tuple[str, ...]]:
        command = f"show servers state {self.spec.backend}"
        answer = await self._ask(command)
        lines = answer.splitlines()
        if len(lines) < 2 or not lines[0].isdigit() or not lines[1].startswith("# "):
            raise self._refused(command, answer)
        columns = lines[1][2:].split()
        rows = [dict(zip(columns, line.split(), strict=False)) for line in lines[2:] if line]
        found = {
            row["srv_name"]: _row_endpoint(row)
            for row in rows
            if row.get("be_name") == self.spec.backend
        }
        for server in (self.spec.stable_server, self.spec.canary_server):
            if server not in found:
                raise RouterMisconfigured(
                    f"HAProxy {self.spec.runtime_api}: backend {self.spec.backend!r} has no "
                    f"server {server!r} (servers: {', '.join(sorted(found)) or 'none'})"
                )
        return found

    async def _weight(self, server: str) -> int:
        command = f"get weight {self.spec.backend}/{server}"
        answer = await self._ask(command)
        first = answer.split(maxsplit=1)[0]
        if not first.isdigit():
            raise self._refused(command, answer)
        return int(first)

    async def _set_weight(self, server: str, weight: int) -> None:
        command = f"set weight {self.spec.backend}/{server} {weight}"
        answer = await self.api.command(command)
        if answer:  # success is an empty answer
            raise self._refused(command, answer)

    async def _set_address(self, server: str, endpoint: str) -> None:
        host, _, port = endpoint.rpartition(":")
        command = f"set server {self.spec.backend}/{server} addr {host.strip('[]')} port {port}"
        answer = await self.api.command(command)
        if not answer.startswith(_SET_ADDR_OK):
            raise self._refused(command, answer)
        # The answer may accept the address but refuse the port: only the state tells.
        seen = (await self._endpoints())[server]
        if seen != (endpoint,):
            raise self._refused(command, f"{answer} (server now at {list(seen)})")

    async def _ask(self, command: str) -> str:
        """A read command's answer; none at all is a transient failure, not a refusal."""
        answer = await self.api.command(command)
        if not answer:
            raise RouterUnavailable(
                f"HAProxy {self.spec.runtime_api} answered nothing to `{command}`"
            )
        return answer

    def _refused(self, command: str, answer: str) -> RouterMisconfigured:
        hint = ""
        if "Permission denied" in answer:
            hint = " (the stats socket needs `level admin`)"
        return RouterMisconfigured(
            f"HAProxy {self.spec.runtime_api} refused `{command}`: {answer}{hint}"
        )


def _row_endpoint(row: dict[str, str]) -> tuple[str, ...]:
    """A `show servers state` row's address as `IP:port`; () when it has none."""
    ip, port = row.get("srv_addr", "-"), row.get("srv_port", "0")
    if ip in ("-", "") or not port.isdigit() or int(port) == 0:
        return ()
    return (_format(ip, int(port)),)
