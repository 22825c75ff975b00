"""Absolute limits judged on evidence: is more than a share b of the canary's requests bad?

Every absolute rule is a statement about a share of requests: `error_rate ≤ b` is "at most
b of the requests fail", `availability ≥ a` is "at most 1 − a fail", `latency_p99_ms ≤ L`
is "at most 1% are slower than L". Under the null (share ≤ b) each request is bad with
probability at most b. For an alternative share p > b the likelihood ratio of the counts,
(p/b)^bad · ((1−p)/(1−b))^good, is a nonnegative supermartingale under the null, so the
chance that it ever reaches 1/α is at most α (Ville's inequality), however often one looks.

Alternatives: a grid of shares above b, evenly spaced in log-odds from 1.5× b's odds up to
a share of 99.5%, so that a dead canary (every request bad) is caught at its first check.
The top share gets half the weight (half of α), the others share the rest: a glaring
failure is proven by 2 bad requests in a row at a stage's start (3 with an even split),
which is what a quiet service brings in 2 checks; a small excess pays ln 1.8 nats for it.

Two windows, as a rule's `window` says:

- `stage`: the evidence since the stage began (the mixture of the grid's likelihood ratios
  reaching 1/α). Small, persistent excesses add up over the whole stage.
- `check`: the evidence of the *most damning recent stretch*: every run of consecutive
  checks ending now is tried, so an hour of health never hides a failure that starts now.
  Each stretch start s (the s-th check with requests) gets the share 1/(s(s+1)) of each
  alternative's share of α; the budgets add up to α, so the false-alarm guarantee holds
  over the whole stage. The best stretch is kept by a CUSUM-like recursion:
  one number per alternative, whatever the stage's length.

Pure: counts in, numbers out; the state is small enough to heartbeat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Window = Literal["check", "stage"]
GRID_POINTS = 10
_SMALLEST_ODDS_RATIO = 1.5
_TOP_SHARE = 0.995
_TOP_WEIGHT = 0.5
_EDGE = 1e-9  # bounds of exactly 0 or 1 are judged as these: one bad request is proof


@lru_cache(maxsize=256)
def alternatives(bound: float) -> tuple[float, ...]:
    """The alternative shares for a bound: log-odds offsets geometric from ln 1.5 upward."""
    b = min(max(bound, _EDGE), 1 - _EDGE)
    top = max(_TOP_SHARE, (1 + b) / 2)
    lowest, highest = math.log(_SMALLEST_ODDS_RATIO), _logit(top) - _logit(b)
    if highest <= lowest:
        return ((b + 1) / 2,)
    ratio = (highest / lowest) ** (1 / (GRID_POINTS - 1))
    return tuple(_expit(_logit(b) + lowest * ratio**i) for i in range(GRID_POINTS))


@lru_cache(maxsize=256)
def _log_weights(bound: float) -> tuple[float, ...]:
    """ln of each alternative's share of α: half for the top share, the rest evenly."""
    points = len(alternatives(bound))
    if points == 1:
        return (0.0,)
    return (math.log((1 - _TOP_WEIGHT) / (points - 1)),) * (points - 1) + (math.log(_TOP_WEIGHT),)


@lru_cache(maxsize=256)
def _coefficients(bound: float) -> tuple[tuple[float, float], ...]:
    """Per alternative p: (ln p/b, ln (1−p)/(1−b)), the log-likelihood ratio per bad and
    per good request."""
    b = min(max(bound, _EDGE), 1 - _EDGE)
    return tuple((math.log(p / b), math.log((1 - p) / (1 - b))) for p in alternatives(bound))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass(frozen=True, slots=True)
class LimitTest:
    """The running test of one limit on one arm: `share of bad requests ≤ bound`.

    A dataclass, not a model: it is built a few times every check, on the hot path."""

    bound: float
    window: Window
    # stage: ln LR since the stage began; check: the best stretch's ln LR less its budget.
    statistics: tuple[float, ...] = ()
    # check: (bad, requests, checks) of each alternative's best stretch.
    stretches: tuple[tuple[int, int, int], ...] = ()
    starts: int = 0
    events: int = 0
    requests: int = 0

    @classmethod
    def start(cls, bound: float, window: Window) -> LimitTest:
        points = len(alternatives(bound))
        initial = 0.0 if window == "stage" else -math.inf
        return cls(
            bound=bound,
            window=window,
            statistics=(initial,) * points,
            stretches=((0, 0, 0),) * points,
            starts=0,
            events=0,
            requests=0,
        )

    def observe(self, events: int, requests: int) -> LimitTest:
        """Add one check's counts (what happened since the previous check)."""
        if requests <= 0:
            return self
        events = min(events, requests)
        good = requests - events
        steps = [events * bad + good * fine for bad, fine in _coefficients(self.bound)]
        starts = self.starts + 1
        if self.window == "stage":
            statistics = tuple(s + step for s, step in zip(self.statistics, steps, strict=True))
            stretches = self.stretches
        else:
            fresh = math.log(starts * (starts + 1))
            statistics_list: list[float] = []
            stretch_list: list[tuple[int, int, int]] = []
            for value, stretch, step in zip(self.statistics, self.stretches, steps, strict=True):
                if value + step >= step - fresh:  # carry on the stretch, or start anew here
                    statistics_list.append(value + step)
                    stretch_list.append(
                        (stretch[0] + events, stretch[1] + requests, stretch[2] + 1)
                    )
                else:
                    statistics_list.append(step - fresh)
                    stretch_list.append((events, requests, 1))
            statistics, stretches = tuple(statistics_list), tuple(stretch_list)
        return LimitTest(
            bound=self.bound,
            window=self.window,
            statistics=statistics,
            stretches=stretches,
            starts=starts,
            events=self.events + events,
            requests=self.requests + requests,
        )

    def log_evidence(self) -> float:
        """ln E, the weighted evidence: breach once it reaches `log_threshold(α)`."""
        weighted = self._weighted()
        if self.window == "stage":
            return _log_sum_exp(weighted)  # the mixture's likelihood ratio
        return max(weighted)  # each alternative at its own share of α

    @staticmethod
    def log_threshold(alpha: float) -> float:
        return math.log(1 / alpha)

    def rejects(self, alpha: float) -> bool:
        """True once the evidence that the share exceeds the bound reaches its threshold."""
        return self.log_evidence() >= self.log_threshold(alpha)

    def counted(self) -> tuple[int, int, int | None]:
        """(bad, requests, checks) behind the evidence: the stage's, or the best stretch's
        (checks None for the stage)."""
        if self.window == "stage" or not self.starts:
            return self.events, self.requests, None
        weighted = self._weighted()
        return self.stretches[max(range(len(weighted)), key=weighted.__getitem__)]

    def _weighted(self) -> list[float]:
        """Each alternative's ln LR plus the ln of its share of α."""
        return [s + w for s, w in zip(self.statistics, _log_weights(self.bound), strict=True)]


def _log_sum_exp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def upper_bound(events: int, requests: int, alpha: float) -> float:
    """An upper (1 − α) confidence bound on a share from `events` of `requests`.

    Chernoff: P(share observed ≤ x) ≤ exp(−n·KL(x‖p)) for p > x; the bound is the largest
    p with n·KL(x‖p) ≤ ln(1/α), found by bisection. Never below the observed share.
    """
    if requests <= 0:
        return 1.0
    observed = events / requests
    budget = math.log(1 / alpha) / requests
    low, high = observed, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if _kl(observed, middle) > budget:
            high = middle
        else:
            low = middle
    return high


def _kl(x: float, p: float) -> float:
    """KL divergence of Bernoulli(x) from Bernoulli(p)."""
    if p >= 1:
        return math.inf if x < 1 else 0.0
    total = 0.0
    if x > 0:
        total += x * math.log(x / p)
    if x < 1:
        total += (1 - x) * math.log((1 - x) / (1 - p))
    return total
