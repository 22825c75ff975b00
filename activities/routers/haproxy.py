"""HAProxy router: server weights, addresses and states through the runtime API, never a reload.

HAProxy must have one backend with server SLOTS for each arm: the server named exactly
`stable_server`, or that name followed by digits (as `server-template stable 1-5 ...`
names them: stable1 ... stable5), likewise for `canary_server`; a dynamic balance
algorithm (e.g. roundrobin) and an admin-level stats socket (unix or TCP). An arm's
endpoints are its slots out of maintenance; the others wait in `maint`. Every used slot of
an arm has the same weight, chosen so the arm totals read back as the canary percentage.
See docs/routers/haproxy.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal

from activities.routers.base import ReadBackRouter
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable, SpecError
from sluicegate.spec import HAProxyRouter

CONNECT_TIMEOUT = 2.0  # seconds to reach the runtime API
ANSWER_TIMEOUT = 5.0  # seconds for HAProxy to answer one command
MAX_WEIGHT = 256  # HAProxy's largest server weight
# SRV_ADMF_MAINT in HAProxy 2.6: forced (`state maint`), inherited (`track`) or DNS
# maintenance. Not CMAINT (0x04, the `disabled` keyword): `state ready` ends that one.
_MAINT = 0x23
# HAProxy's own charset for proxy and server names; anything else could smuggle a second
# command (`;`, newline) onto the admin socket.
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_SET_ADDR_OK = ("IP changed from", "no need to change the addr")

Arm = Literal["stable", "canary"]
ARMS: tuple[Arm, Arm] = ("stable", "canary")


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


def canary_percent(stable: int, canary: int) -> int:
    """The canary's share of traffic for two arm weights, as a whole percentage.

    Any canary traffic reads as at least 1% and any stable traffic as at most 99%, so
    rounding never hides an arm that gets requests. Both at 0 (no traffic at all) reads 0.
    """
    if canary == 0:
        return 0
    if stable == 0:
        return 100
    return min(max(round(100 * canary / (stable + canary)), 1), 99)


def slot_weights(percent: int, n_stable: int, n_canary: int) -> tuple[int, int]:
    """(stable, canary) weight of each used slot, so that the arm totals read back as
    `percent` through `canary_percent`.

    One server per arm gives stable `100 - percent`, canary `percent`. Raises ValueError
    when weights of at most 256 cannot split `percent` evenly over the arms' servers.
    """
    found = _slot_weights(percent, n_stable, n_canary)
    if found is not None:
        return found
    if n_stable < 1 or n_canary < 1:
        raise ValueError(f"{percent}% needs servers in both arms")
    near = [
        f"{p}%"
        for p in (
            _reachable(range(percent, 0, -1), n_stable, n_canary),
            _reachable(range(percent, 101), n_stable, n_canary),
        )
        if p is not None
    ]
    raise ValueError(
        f"HAProxy server weights (at most {MAX_WEIGHT}) cannot give {percent}% to "
        f"{n_canary} canary server(s) against {n_stable} stable one(s), each arm split "
        f"evenly; the nearest shares they can give are {' and '.join(near)}"
    )


def _reachable(percents: Iterable[int], n_stable: int, n_canary: int) -> int | None:
    return next((p for p in percents if _slot_weights(p, n_stable, n_canary)), None)


def _slot_weights(percent: int, n_stable: int, n_canary: int) -> tuple[int, int] | None:
    if percent == 0:
        return 100, 0
    if percent == 100:
        return 0, 100
    if n_stable < 1 or n_canary < 1:
        return None
    # Exact: each stable slot (100 - p) * |canary|, each canary slot p * |stable|.
    common = math.gcd(n_stable, n_canary)
    exact = ((100 - percent) * n_canary // common, percent * n_stable // common)
    if max(exact) > MAX_WEIGHT:
        divisor = math.gcd(*exact)
        exact = (exact[0] // divisor, exact[1] // divisor)
    if max(exact) <= MAX_WEIGHT:
        return exact
    # No exact pair fits: the closest share that still reads back as `percent`. For each
    # canary weight, the best stable weight is next to the ideal one (the share is
    # monotonic in it), so trying its floor and ceiling finds a pair if there is one.
    best: tuple[float, int, int] | None = None
    for canary in range(1, MAX_WEIGHT + 1):
        ideal = canary * n_canary * (100 - percent) / (percent * n_stable)
        for stable in {math.floor(ideal), math.ceil(ideal)}:
            stable = min(max(stable, 1), MAX_WEIGHT)
            if canary_percent(n_stable * stable, n_canary * canary) != percent:
                continue
            share = n_canary * canary / (n_stable * stable + n_canary * canary)
            candidate = (abs(share - percent / 100), stable, canary)
            if best is None or candidate[0] < best[0]:
                best = candidate
    return None if best is None else (best[1], best[2])


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


@dataclass(frozen=True)
class Slot:
    """One HAProxy server of an arm, as `show servers state` reports it."""

    name: str
    endpoint: str | None  # IP:port; None when the server has no address
    ready: bool  # out of maintenance: a used slot, one of the arm's endpoints
    weight: int

    @property
    def serves(self) -> bool:
        """Whether this slot is one of its arm's endpoints."""
        return self.ready and self.endpoint is not None


@dataclass(frozen=True)
class Step:
    """One change to one slot: its weight, its address, or its state (ready or maint)."""

    server: str
    weight: int | None = None
    endpoint: str | None = None
    ready: bool | None = None


def endpoints_of(state: RouterState, arm: Arm) -> tuple[str, ...]:
    return state.stable_endpoints if arm == "stable" else state.canary_endpoints


def arm_state(slots: dict[Arm, list[Slot]]) -> RouterState:
    """The routing the slots give: each arm's serving slots and their total weight."""
    serving = {arm: [s for s in slots[arm] if s.serves] for arm in ARMS}
    totals = {arm: sum(s.weight for s in serving[arm]) for arm in ARMS}
    return RouterState(
        canary_weight=canary_percent(totals["stable"], totals["canary"]),
        stable_endpoints=tuple(s.endpoint for s in serving["stable"] if s.endpoint),
        canary_endpoints=tuple(s.endpoint for s in serving["canary"] if s.endpoint),
    )


def assign(slots: list[Slot], wanted: tuple[str, ...]) -> dict[str, str]:
    """Which slot carries which wanted endpoint (slot name → endpoint).

    An endpoint already served keeps its slot. An arriving endpoint takes over a leaving
    endpoint's slot (one `set server addr`: the handover is one command), else a slot in
    maintenance, preferring one already at its address. Raises ValueError for too few slots.
    """
    if len(wanted) > len(slots):
        raise ValueError(f"{len(slots)} slot(s) for {len(wanted)} endpoint(s)")
    used: dict[str, str] = {}
    arriving = list(wanted)
    for slot in slots:
        if slot.serves and slot.endpoint in arriving:
            used[slot.name] = slot.endpoint
            arriving.remove(slot.endpoint)
    leaving = [s for s in slots if s.ready and s.name not in used]
    waiting = [s for s in slots if not s.ready]
    for endpoint in arriving:
        if leaving:
            slot = leaving.pop(0)
        else:
            slot = next((s for s in waiting if s.endpoint == endpoint), waiting[0])
            waiting.remove(slot)
        used[slot.name] = endpoint
    return used


def plan(slots: dict[Arm, list[Slot]], desired: RouterState) -> list[Step]:
    """The steps from `slots` to `desired`, ordered so that traffic stays safe.

    The canary's share only falls, then only rises: first what lowers it (stable slots
    take their new address and raise their weight or join; then canary slots lower their
    weight or leave), then canary slots take their new address, then what raises it
    (canary slots raise their weight or join; then stable slots lower theirs or leave).
    So the share never exceeds the larger of the old and new shares, the two arms are
    never both at 0, and a slot only ever serves an endpoint of the old or the new state.
    A joining slot gets its weight and address before it leaves maintenance; an arriving
    endpoint takes over a leaving one's slot (see `assign`), so that slot hands over at once.
    """
    n = len(desired.stable_endpoints), len(desired.canary_endpoints)
    weight = dict(zip(ARMS, slot_weights(desired.canary_weight, *n), strict=True))
    # Per arm: what raises its weight (and stable's address changes), what lowers it.
    ups: dict[Arm, list[Step]] = {"stable": [], "canary": []}
    downs: dict[Arm, list[Step]] = {"stable": [], "canary": []}
    moves: list[Step] = []  # the canary's address changes, at its lower weight
    for arm in ARMS:
        used = assign(slots[arm], endpoints_of(desired, arm))
        for slot in slots[arm]:
            new = weight[arm]
            if slot.name not in used:
                if slot.ready:
                    downs[arm].append(Step(slot.name, ready=False))
                continue
            endpoint = used[slot.name]
            if not slot.ready:  # joining: weight and address while in maintenance
                if slot.weight != new:
                    ups[arm].append(Step(slot.name, weight=new))
                if slot.endpoint != endpoint:
                    ups[arm].append(Step(slot.name, endpoint=endpoint))
                ups[arm].append(Step(slot.name, ready=True))
                continue
            if new < slot.weight:
                downs[arm].append(Step(slot.name, weight=new))
            if slot.endpoint != endpoint:
                (ups["stable"] if arm == "stable" else moves).append(
                    Step(slot.name, endpoint=endpoint)
                )
            if new > slot.weight:
                ups[arm].append(Step(slot.name, weight=new))
    if desired.canary_weight == 100:
        # Stable has no weight now, so the share is 100% whatever the canary's weights are:
        # its slots rise before any leaves, or HAProxy could be left with nobody to serve.
        return ups["stable"] + moves + ups["canary"] + downs["canary"] + downs["stable"]
    return ups["stable"] + downs["canary"] + moves + ups["canary"] + downs["stable"]


class HAProxyRouterClient(ReadBackRouter[None]):
    """Router for one HAProxy backend, steered through the runtime API."""

    kind = "haproxy"

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
        if not bad and (
            _slot_of(spec.canary_server, spec.stable_server)
            or _slot_of(spec.stable_server, spec.canary_server)
        ):
            bad.append(
                f"router.stable_server {spec.stable_server!r} and router.canary_server "
                f"{spec.canary_server!r}: one arm's slots (the name, or it followed by digits) "
                "would include the other's"
            )
        if bad:
            raise SpecError(bad)
        self.spec = spec
        self.api = RuntimeApi(spec.runtime_api)
        self.servers: dict[Arm, str] = {"stable": spec.stable_server, "canary": spec.canary_server}

    @property
    def where(self) -> str:
        return f"HAProxy {self.spec.runtime_api} backend {self.spec.backend!r}"

    def _connect(self) -> AbstractAsyncContextManager[None]:
        return nullcontext()  # one connection per command: RuntimeApi opens them

    def _validate(self, desired: RouterState) -> RouterState:
        """`desired` with IP:port endpoints as HAProxy reports them, if weights can give it."""
        arms = {
            arm: tuple(canonical_endpoint(address, arm) for address in endpoints_of(desired, arm))
            for arm in ARMS
        }
        problems = [
            f"{arm}_endpoints {list(endpoints)}: each endpoint may appear once per arm"
            for arm, endpoints in arms.items()
            if len(set(endpoints)) != len(endpoints)
        ]
        shares = {"stable": 100 - desired.canary_weight, "canary": desired.canary_weight}
        problems += [
            f"{shares[arm]}% to {arm}, but it has no endpoints"
            for arm in ARMS
            if shares[arm] and not arms[arm]
        ]
        if not problems:
            try:
                slot_weights(desired.canary_weight, len(arms["stable"]), len(arms["canary"]))
            except ValueError as err:
                problems.append(str(err))
        if problems:
            raise SpecError(problems)
        return RouterState(
            canary_weight=desired.canary_weight,
            stable_endpoints=arms["stable"],
            canary_endpoints=arms["canary"],
        )

    async def _read(self, _: None) -> RouterState:
        """Every slot's weight, address and state, from one `show servers state`."""
        return arm_state(await self._slots())

    async def _write(self, _: None, desired: RouterState) -> None:
        """The steps of `plan`, each one runtime API command; nothing if nothing differs."""
        slots = await self._slots()
        for arm in ARMS:
            if len(endpoints_of(desired, arm)) > len(slots[arm]):
                raise self._too_few(arm, slots[arm], len(endpoints_of(desired, arm)))
        for step in plan(slots, desired):
            await self._apply(step)

    async def _apply(self, step: Step) -> None:
        target = f"{self.spec.backend}/{step.server}"
        if step.weight is not None:
            await self._set(f"set weight {target} {step.weight}")
        elif step.ready is not None:
            await self._set(f"set server {target} state {'ready' if step.ready else 'maint'}")
        elif step.endpoint is not None:
            await self._set_address(step.server, step.endpoint)

    async def _slots(self) -> dict[Arm, list[Slot]]:
        """Each arm's slots in name order (`stable`, `stable1`, `stable2`, ...)."""
        command = f"show servers state {self.spec.backend}"
        answer = await self._ask(command)
        lines = answer.splitlines()
        if len(lines) < 2 or not lines[0].isdigit() or not lines[1].startswith("# "):
            raise self._refused(command, answer)
        columns = lines[1][2:].split()
        rows = [dict(zip(columns, line.split(), strict=False)) for line in lines[2:] if line]
        found = [_row_slot(row) for row in rows if row.get("be_name") == self.spec.backend]
        slots: dict[Arm, list[Slot]] = {}
        for arm in ARMS:
            base = self.servers[arm]
            slots[arm] = sorted(
                (slot for slot in found if _slot_of(slot.name, base)),
                key=lambda slot: (slot.name != base, int(slot.name[len(base) :] or 0)),
            )
            if not slots[arm]:
                names = ", ".join(sorted(slot.name for slot in found)) or "none"
                raise RouterMisconfigured(
                    f"HAProxy {self.spec.runtime_api}: backend {self.spec.backend!r} has no "
                    f"server {base!r} (servers: {names})"
                )
        return slots

    def _too_few(self, arm: Arm, slots: list[Slot], wanted: int) -> RouterMisconfigured:
        base = self.servers[arm]
        names = ", ".join(slot.name for slot in slots)
        last = max(int(slot.name[len(base) :] or 0) for slot in slots)
        more = f"{last + 1}-{last + wanted - len(slots)}"
        return RouterMisconfigured(
            f"HAProxy {self.spec.runtime_api}: backend {self.spec.backend!r} has "
            f"{len(slots)} {arm} slot(s) ({names}) for {wanted} {arm} endpoints; add "
            f"servers named {base} followed by digits, e.g. `server-template {base} {more} "
            f"<IP:port> weight 0 disabled` in the backend, and reload HAProxy"
        )

    async def _set(self, command: str) -> None:
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
        slots = await self._slots()
        seen = next(s.endpoint for arm in ARMS for s in slots[arm] if s.name == server)
        if seen != endpoint:
            raise self._refused(command, f"{answer} (server now at {seen or 'no address'})")

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


def _slot_of(name: str, base: str) -> bool:
    """Whether server `name` is a slot of the arm whose server is `base`."""
    return name.startswith(base) and (name == base or name[len(base) :].isdigit())


def _row_slot(row: dict[str, str]) -> Slot:
    """A `show servers state` row as a slot; a port 0 or `-` address is no address."""
    ip, port = row.get("srv_addr", "-"), row.get("srv_port", "0")
    has_address = ip not in ("-", "") and port.isdigit() and int(port) != 0
    endpoint = _format(ip, int(port)) if has_address else None
    admin, weight = row.get("srv_admin_state", ""), row.get("srv_uweight", "")
    if not (admin.isdigit() and weight.isdigit()):
        raise RouterMisconfigured(
            f"HAProxy `show servers state` row without srv_admin_state or srv_uweight: {row}"
        )
    return Slot(
        name=row.get("srv_name", "?"),
        endpoint=endpoint,
        ready=not int(admin) & _MAINT,
        weight=int(weight),
    )
