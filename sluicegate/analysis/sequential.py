"""An anytime-valid comparison of canary and stable event counts (errors, slow requests).

Null hypothesis: the canary's event rate is at most `tolerance` × stable's. Given that an
event happened in a check window where the canary served a share ρ of the requests, it
landed on the canary with probability q(r) = ρr / (ρr + 1 − ρ), r being the rate ratio.
For each alternative r = tolerance × g (g on a fixed grid above 1) the likelihood ratio
against r = tolerance is a nonnegative supermartingale under the null (any r ≤ tolerance),
and so is their average: an e-process E. Rolling back once E ≥ 1/α rolls back a canary
that is no worse than tolerated with probability at most α, however often one looks
(Ville's inequality). Each window uses its own ρ, so unequal and time-varying traffic
shares are handled exactly; windows without events or without traffic add nothing.

Pure: counts in, numbers out. The state is small (one log-likelihood ratio per grid
point and four totals) so a watcher can carry it in its heartbeat.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sluicegate.analysis.samples import ArmCounters, ArmWindow, Sample
from sluicegate.analysis.verdict import ComparisonResult, Status
from sluicegate.spec import SequentialPolicy

# Alternatives: the rate ratio is g × tolerance, g geometric from 1.25 to 4 in 8 points.
# The mixture pays ln 8 ≈ 2.1 nats over knowing the effect in advance; smaller effects are
# still caught, only later, and larger ones at once (bench/judge.py measured wider grids:
# from 1.1 to 16 in 24 points was about 15% slower on a doubled error rate).
ALTERNATIVES: tuple[float, ...] = tuple(1.25 * (4 / 1.25) ** (i / 7) for i in range(8))


class CountComparison(BaseModel):
    """The running test for one kind of event, from the stage's start until now."""

    model_config = ConfigDict(frozen=True)

    tolerance: float = Field(ge=1.0, description="null: canary rate ≤ tolerance × stable's")
    log_likelihood_ratios: tuple[float, ...] = tuple(0.0 for _ in ALTERNATIVES)
    canary_events: int = 0
    canary_requests: int = 0
    stable_events: int = 0
    stable_requests: int = 0

    def observe(
        self, canary_events: int, canary_requests: int, stable_events: int, stable_requests: int
    ) -> CountComparison:
        """Add one window's counts (not cumulative: what happened in the window)."""
        totals = {
            "canary_events": self.canary_events + canary_events,
            "canary_requests": self.canary_requests + canary_requests,
            "stable_events": self.stable_events + stable_events,
            "stable_requests": self.stable_requests + stable_requests,
        }
        if canary_requests <= 0 or stable_requests <= 0 or canary_events + stable_events <= 0:
            return self.model_copy(update=totals)
        share = canary_requests / (canary_requests + stable_requests)
        q0 = _canary_probability(share, self.tolerance)
        updated = tuple(
            log_lr
            + _log_lr_step(
                _canary_probability(share, self.tolerance * g), q0, canary_events, stable_events
            )
            for log_lr, g in zip(self.log_likelihood_ratios, ALTERNATIVES, strict=True)
        )
        return self.model_copy(update={**totals, "log_likelihood_ratios": updated})

    @property
    def log_e_value(self) -> float:
        """ln E: the log of the average likelihood ratio over the alternatives."""
        return _log_mean_exp(self.log_likelihood_ratios)

    def rejects(self, alpha: float) -> bool:
        """True once the evidence that the canary is worse than tolerated reaches 1/α."""
        return self.log_e_value >= math.log(1 / alpha)

    def rate_ratio(self) -> float | None:
        """Canary rate over stable rate so far (None without traffic on both)."""
        if self.canary_requests == 0 or self.stable_requests == 0:
            return None
        stable_rate = self.stable_events / self.stable_requests
        canary_rate = self.canary_events / self.canary_requests
        if stable_rate == 0:
            return math.inf if canary_rate > 0 else None
        return canary_rate / stable_rate

    def ratio_interval(self, alpha: float) -> tuple[float, float] | None:
        """A fixed-sample (1 − α) interval for the rate ratio: log-normal with 0.5 added to
        each count (so zero counts work). For display, beside the anytime-valid test."""
        if self.canary_requests == 0 or self.stable_requests == 0:
            return None
        a, b = self.canary_events + 0.5, self.stable_events + 0.5
        centre = math.log(a / self.canary_requests) - math.log(b / self.stable_requests)
        spread = _normal_quantile(1 - alpha / 2) * math.sqrt(1 / a + 1 / b)
        return math.exp(centre - spread), math.exp(centre + spread)


@lru_cache(maxsize=64)
def _normal_quantile(p: float) -> float:
    return NormalDist().inv_cdf(p)


def _canary_probability(share: float, ratio: float) -> float:
    """P(an event lands on the canary | canary share `share`, rate ratio `ratio`)."""
    return share * ratio / (share * ratio + 1 - share)


def _log_lr_step(q: float, q0: float, canary_events: int, stable_events: int) -> float:
    return canary_events * math.log(q / q0) + stable_events * math.log((1 - q) / (1 - q0))


def _log_mean_exp(values: tuple[float, ...]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


class SequentialState(BaseModel):
    """Everything the comparison carries from one check to the next (and across retries)."""

    model_config = ConfigDict(frozen=True)

    errors: CountComparison
    slow: CountComparison
    slow_above_ms: float | None = Field(
        description="stable's slow-request bound, fixed when the stage began"
    )


def start_comparison(stage_start: Sample, policy: SequentialPolicy) -> SequentialState:
    """Fix the slow-request bound from stable's latency before the stage's traffic."""
    bound = None
    if stage_start.stable is not None:
        bound = bucket_at_or_above(stage_start.stable.latency_buckets, policy.slow_quantile)
    return SequentialState(
        errors=CountComparison(tolerance=policy.error_tolerance),
        slow=CountComparison(tolerance=policy.latency_tolerance),
        slow_above_ms=bound,
    )


def compare(
    state: SequentialState,
    canary: ArmWindow | None,
    stable: ArmWindow | None,
    policy: SequentialPolicy,
    min_requests: int,
) -> tuple[SequentialState, tuple[ComparisonResult, ...]]:
    """Add one check's window (each arm's counts since the previous check, None where the
    source had no data); the new state and the evidence."""
    errors, slow = state.errors, state.slow
    fresh = canary is not None and stable is not None
    if canary is not None and stable is not None:
        errors = errors.observe(canary.errors, canary.requests, stable.errors, stable.requests)
        if state.slow_above_ms is not None:
            slow = slow.observe(
                slow_requests(canary, state.slow_above_ms),
                canary.timed,
                slow_requests(stable, state.slow_above_ms),
                stable.timed,
            )
    updated = state.model_copy(update={"errors": errors, "slow": slow})
    error_alpha = policy.alpha * policy.error_share_of_alpha
    results = [_result("errors", errors, error_alpha, fresh, min_requests, None)]
    if (bound := state.slow_above_ms) is not None:
        slow_alpha = policy.alpha - error_alpha
        results.append(_result("slow_requests", slow, slow_alpha, fresh, min_requests, bound))
    return updated, tuple(results)


def slow_requests(arm: ArmCounters | ArmWindow, above_ms: float) -> int:
    """Requests of `arm` slower than `above_ms`, a bucket bound of its histogram (out of
    the requests in the histogram: a proxy's own 503s may have no latency)."""
    return max(arm.timed - arm.at_or_below(above_ms), 0)


def bucket_at_or_above(buckets: tuple[tuple[float, int], ...], q: float) -> float | None:
    """The smallest finite bucket bound holding at least a share `q` of the requests."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    return next((le for le, count in buckets if count >= rank and math.isfinite(le)), None)


def _result(
    metric: Literal["errors", "slow_requests"],
    test: CountComparison,
    alpha: float,
    fresh: bool,
    min_requests: int,
    slow_above_ms: float | None,
) -> ComparisonResult:
    """Breach once the evidence suffices; healthy only with enough requests and fresh
    data this window, so evidence gathered before an outage never vouches for it."""
    log_e_value = test.log_e_value
    if log_e_value >= math.log(1 / alpha):
        status: Status = "breach"
    elif not fresh or test.canary_requests < min_requests:
        status = "inconclusive"
    else:
        status = "healthy"
    return ComparisonResult(
        metric=metric,
        canary_events=test.canary_events,
        canary_requests=test.canary_requests,
        stable_events=test.stable_events,
        stable_requests=test.stable_requests,
        rate_ratio=test.rate_ratio(),
        ratio_interval=test.ratio_interval(alpha),
        e_value=math.exp(min(log_e_value, 700.0)),
        bound=1 / alpha,
        tolerance=test.tolerance,
        slow_above_ms=slow_above_ms,
        status=status,
    )
