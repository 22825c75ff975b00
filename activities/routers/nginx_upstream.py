"""The upstream file the nginx router owns: rendered from a RouterState, parsed back.

Pure text in and out; `activities/routers/nginx.py` writes, tests and reloads it.
"""

from __future__ import annotations

import math
import re

from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, SpecError

_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-]*):(\d{1,5})$")
_SERVER = re.compile(r"^server\s+([^\s;#]+)((?:\s+[^\s;#]+)*)\s*;\s*#\s*(stable|canary)\b.*$")
_PARAMETER = re.compile(r"^weight=\d+$|^(max_fails|fail_timeout)=\w+$|^down$")
_HEADER = """\
# Owned by Sluicegate (nginx router): rewritten on every traffic change, so edit the
# deployment, not this file. The trailing comment tells the arms apart. nginx has no
# weight 0: a server at 0% is written `down`. max_fails=0: the split stays as written.
"""


def render_upstream(name: str, state: RouterState) -> str:
    """The upstream file for `state`: arm shares (100 - w) : w, split evenly among servers."""
    lines = [_HEADER.rstrip("\n"), f"upstream {name} {{"]
    for arm, address, weight in _server_weights(state):
        params = f"weight={weight} max_fails=0" if weight else "down"
        lines.append(f"    server {address} {params};  # {arm}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _server_weights(state: RouterState) -> list[tuple[str, str, int]]:
    """Per-server weights whose arm sums are in the ratio (100 - w) : w, as small as possible."""
    stable, canary = state.stable_endpoints, state.canary_endpoints
    # Each stable server gets (100 - w) * |canary|, each canary server w * |stable|:
    # both arm totals then carry the same factor |stable| * |canary|.
    per_stable = (100 - state.canary_weight) * max(len(canary), 1)
    per_canary = state.canary_weight * max(len(stable), 1)
    divisor = math.gcd(per_stable, per_canary) or 1
    return [("stable", a, per_stable // divisor) for a in stable] + [
        ("canary", a, per_canary // divisor) for a in canary
    ]


def parse_upstream(text: str, name: str, where: str) -> RouterState:
    """The routing an upstream file describes; anything Sluicegate would not write is refused."""
    block = re.search(
        rf"^\s*upstream\s+{re.escape(name)}\s*\{{(.*?)^\s*\}}", text, re.MULTILINE | re.DOTALL
    )
    if block is None:
        raise RouterMisconfigured(f"{where} has no `upstream {name} {{ ... }}` block")
    endpoints: dict[str, list[str]] = {"stable": [], "canary": []}
    totals = {"stable": 0, "canary": 0}
    for raw in block.group(1).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SERVER.match(line)
        if match is None:
            raise RouterMisconfigured(
                f"{where}: upstream {name}: cannot use {line!r} (Sluicegate owns this file and "
                "writes only `server <host:port> weight=N max_fails=0;  # stable|canary` lines)"
            )
        address, params, arm = match.group(1), match.group(2).split(), match.group(3)
        endpoints[arm].append(address)
        totals[arm] += _weight(params, line, where)
    total = totals["stable"] + totals["canary"]
    if total == 0:
        raise RouterMisconfigured(f"{where}: upstream {name}: every server is down")
    return RouterState(
        canary_weight=round(100 * totals["canary"] / total),
        stable_endpoints=tuple(endpoints["stable"]),
        canary_endpoints=tuple(endpoints["canary"]),
    )


def _weight(params: list[str], line: str, where: str) -> int:
    for param in params:
        if not _PARAMETER.match(param):
            raise RouterMisconfigured(
                f"{where}: unsupported server parameter {param!r} in {line!r}"
            )
    if "down" in params:
        return 0
    weights = [int(p.split("=", 1)[1]) for p in params if p.startswith("weight=")]
    return weights[-1] if weights else 1  # nginx's default weight


def check_endpoints(desired: RouterState) -> None:
    """Refuse, before anything changes, what nginx cannot route or what would break the file."""
    problems = [
        f"endpoint {address!r}: nginx upstream servers need host:port with a port 1-65535"
        for address in (*desired.stable_endpoints, *desired.canary_endpoints)
        if not (m := _ADDRESS.match(address)) or not 0 < int(m.group(2)) < 65536
    ]
    if desired.canary_weight > 0 and not desired.canary_endpoints:
        problems.append(f"{desired.canary_weight}% to the canary, but it has no endpoints")
    if desired.canary_weight < 100 and not desired.stable_endpoints:
        problems.append(f"{100 - desired.canary_weight}% to stable, but it has no endpoints")
    if problems:
        raise SpecError(problems)
