"""The cells and scenarios of bench/judge_grid.py: which simulated services are judged.

Each cell is one point of the grid (stable's errors, stable's p99, traffic, canary share,
check interval, histogram layout, plan). The lists cover every value of every axis at
least once (checked by `uncovered`) plus the hard corners named in `CELLS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from sluicegate.spec import DEFAULT_STAGES

Buckets = Literal["envoy", "fine"]
Plan = Literal["default", "single"]

INF = math.inf
# Envoy's default histogram bucket bounds, in ms.
ENVOY_BOUNDS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000, INF,
)  # fmt: skip
FINE_BOUNDS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 120, 150, 175, 200, 225, 250,
    300, 400, 500, 750, 1000, 2500, 5000, 10000, INF,
)  # fmt: skip
BOUNDS: dict[str, tuple[float, ...]] = {"envoy": ENVOY_BOUNDS, "fine": FINE_BOUNDS}

SINGLE_STAGE_SECONDS = 30 * 60

# The grid's axes: every value appears in at least one cell.
ERRORS = (0.0, 0.001, 0.003, 0.01)
P99S = (0.3, 0.6, 0.9)
TRAFFIC = (50.0, 250.0, 1000.0)
SHARES = (0.01, 0.05, 0.25)
AXES: dict[str, tuple[object, ...]] = {
    "errors": ERRORS,
    "p99": P99S,
    "traffic": TRAFFIC,
    "share": SHARES,
    "interval": (1.0, 10.0),
    "buckets": ("envoy", "fine"),
    "plan": ("default", "single"),
}


@dataclass(frozen=True)
class Cell:
    """One simulated service and plan."""

    errors: float  # stable's error share
    p99: float  # stable's true p99 as a fraction of the 200 ms limit
    traffic: float  # requests/s on both arms together
    share: float  # the canary's share (single-stage plans; the default plan has its own)
    interval: float  # seconds between checks
    buckets: Buckets = "envoy"
    plan: Plan = "single"
    compare: bool = False  # also judge its streams with the competitor judges

    @property
    def stages(self) -> tuple[tuple[float, float], ...]:
        """(canary share, seconds) per stage."""
        if self.plan == "default":
            return tuple((s.weight / 100, s.bake.total_seconds()) for s in DEFAULT_STAGES)
        return ((self.share, float(SINGLE_STAGE_SECONDS)),)

    @property
    def bounds(self) -> tuple[float, ...]:
        return BOUNDS[self.buckets]

    @property
    def name(self) -> str:
        """`e0.1% p60 r250 w5% i10 envoy single`; the default plan shows `default plan`."""
        share = "default plan" if self.plan == "default" else f"w{self.share:.0%} single"
        return (
            f"e{self.errors * 100:g}% p{self.p99 * 100:.0f} r{self.traffic:g} "
            f"i{self.interval:g} {self.buckets} {share}"
        )

    def canary_per_check(self) -> float:
        """Expected canary requests per check in the first stage."""
        return self.traffic * self.stages[0][0] * self.interval


def _cell(
    errors: float,
    p99: float,
    traffic: float,
    share: float,
    interval: float,
    buckets: Buckets = "envoy",
    plan: Plan = "single",
    compare: bool = False,
) -> Cell:
    return Cell(errors, p99, traffic, share, interval, buckets, plan, compare)


# Stable's errors x p99 at a middling service (cheap: 10-s checks).
_ERRORS_BY_LATENCY = tuple(
    _cell(e, p, 250, 0.05, 10, compare=(e, p) in ((0.001, 0.6), (0.01, 0.9)))
    for e in ERRORS
    for p in P99S
)
# Traffic x share at 1-s checks: the few-requests-per-check regime (hard corner 50 x 1% x 1 s).
# Two pairs give the same canary requests per check (2.5 and 12.5): one of each is run.
_TRAFFIC_BY_SHARE = tuple(
    _cell(0.001, 0.6, r, w, 1, "fine", compare=(r, w) == (50, 0.01))
    for r in TRAFFIC
    for w in SHARES
    if (r, w) not in ((250, 0.01), (50, 0.25))
)
_MIXED = (
    _cell(0.01, 0.9, 1000, 0.25, 1, "envoy", compare=True),  # hard corner, at 1-s checks
    _cell(0.01, 0.9, 50, 0.01, 10, "envoy"),  # hard corner, low traffic
    _cell(0.003, 0.3, 1000, 0.01, 10, "fine"),
    _cell(0.0, 0.9, 50, 0.25, 10, "fine"),
    _cell(0.001, 0.9, 250, 0.05, 10, "fine"),
)
_DEFAULT_PLAN = (
    _cell(0.001, 0.6, 250, 0.05, 1, "envoy", "default"),
    _cell(0.0, 0.3, 50, 0.05, 10, "fine", "default"),
    _cell(0.01, 0.9, 1000, 0.05, 10, "envoy", "default", compare=True),
)
CELLS: tuple[Cell, ...] = _ERRORS_BY_LATENCY + _TRAFFIC_BY_SHARE + _MIXED + _DEFAULT_PLAN

# --quick: fewer cells, still every value of every axis and the hard corners.
QUICK_CELLS: tuple[Cell, ...] = (
    _cell(0.001, 0.6, 250, 0.05, 10, compare=True),
    _cell(0.01, 0.9, 250, 0.05, 10, compare=True),  # hard corner: stable at the limits
    _cell(0.001, 0.6, 50, 0.01, 1, "fine", compare=True),  # hard corner: 0.5 req/check
    _cell(0.0, 0.3, 1000, 0.25, 1, "fine"),
    _cell(0.003, 0.3, 1000, 0.01, 10, "fine"),
    _cell(0.01, 0.9, 1000, 0.05, 10, "envoy", "default", compare=True),
    _cell(0.001, 0.6, 250, 0.05, 1, "envoy", "default"),
)


def uncovered(cells: tuple[Cell, ...]) -> list[str]:
    """Axis values no cell has (the share axis counts single-stage cells only)."""
    missing = []
    for axis, values in AXES.items():
        pool = [c for c in cells if axis != "share" or c.plan == "single"]
        seen = {getattr(c, axis) for c in pool}
        missing += [f"{axis}={v}" for v in values if v not in seen]
    corners = {
        "50 req/s x 1% x 1 s": any(
            c.traffic == 50 and c.share == 0.01 and c.interval == 1 and c.plan == "single"
            for c in cells
        ),
        "errors 1% x p99 90% x envoy": any(
            c.errors == 0.01 and c.p99 == 0.9 and c.buckets == "envoy" for c in cells
        ),
        "default plan at 1 s": any(c.plan == "default" and c.interval == 1 for c in cells),
        "default plan at 10 s": any(c.plan == "default" and c.interval == 10 for c in cells),
    }
    return missing + [f"corner {name}" for name, present in corners.items() if not present]


@dataclass(frozen=True)
class Scenario:
    """What the canary does. Regressions start at the canary's first check of the first
    stage, or `onset` of the way into it."""

    name: str
    error_factor: float = 1.0  # canary errors = stable's x this (stable + 2 points at 0%)
    dead: bool = False  # every canary request fails
    latency_factor: float = 1.0  # every canary latency x this
    latency_add_ms: float = 0.0  # every canary latency + this
    poison: float | None = None  # both arms' error share once the canary has traffic
    onset: float = 0.0  # share of the first stage before the regression starts

    @property
    def regression(self) -> bool:
        return self != AA

    def canary_errors(self, stable: float) -> float:
        if self.dead:
            return 1.0
        if self.poison is not None:
            return self.poison
        if self.error_factor != 1.0:
            return stable * self.error_factor if stable > 0 else stable + 0.02
        return stable

    def stable_errors(self, stable: float) -> float:
        return self.poison if self.poison is not None else stable

    @property
    def must_be_quick(self) -> bool:
        """Detection within 2 checks is a target (dead canary, +250 ms)."""
        return self.dead or self.latency_add_ms > 0


AA = Scenario("A/A")
REGRESSIONS: tuple[Scenario, ...] = (
    Scenario("errors x3", error_factor=3.0),
    Scenario("latency x1.5", latency_factor=1.5),
    Scenario("dead canary", dead=True),
    Scenario("+250 ms", latency_add_ms=250.0),
    Scenario("poisons stable", poison=0.05),
    Scenario("dead mid-stage", dead=True, onset=0.5),
    Scenario("+250 mid-stage", latency_add_ms=250.0, onset=0.5),
)
SCENARIOS: tuple[Scenario, ...] = (AA, *REGRESSIONS)
