"""Canary judges side by side on identical simulated traffic (the protocol of ANALYSIS.md).

    python -m bench.judge [--runs 2000] [--interval 5] [--seed 1]

Traffic: 1000 req/s in total times a slowly varying multiplier shared by both arms, 5% on
the canary; stable errors 1%; latency lognormal (σ = 0.5), recorded as the counts of
requests slower than stable's p90 and p99. Scenarios: E1 (canary errors 2%), L1 (canary
latency × 1.2), A/A (no regression), A/A with bursty errors, A/A at low traffic (100 req/s).
Judges, every `interval` seconds on the same streams:

- sequential: ours (sluicegate.analysis.sequential), errors and p90 exceedances, α = 0.01
  split 0.8 / 0.2, tolerance 1.0 (`--tolerance`; vectorised here, checked against the real
  class);
- threshold: Flagger style, canary error rate and p90-exceedance share over the last 60 s
  against a bound, rollback at the first failed check; the bounds are tuned on A/A runs to
  the same 1%-per-hour false-alarm rate;
- mann-whitney: Kayenta style, a point per minute per arm; every minute from 5 points on,
  a one-sided Mann-Whitney U test of the canary's points against stable's (98%).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu, norm

from sluicegate.analysis.sequential import ALTERNATIVES, CountComparison
from sluicegate.spec import SequentialPolicy

HOUR = 3600
CHUNK = 1000  # runs simulated at once: bounds the memory at about 1 GB
POLICY = SequentialPolicy()  # the spec's defaults: the bench measures what users get
ALPHA = POLICY.alpha
BUDGET = 0.01  # the false-alarm rate per hour the threshold judge is tuned to
TOLERANCE = 1.0
# Slow requests are many more events than errors, so their evidence grows several times
# faster: they need less of the false-alarm budget (measured: E1 p95 85 → 75 s, L1 +1 s).
ERROR_SHARE_OF_ALPHA = POLICY.error_share_of_alpha
CANARY_SHARE = 0.05
STABLE_ERRORS = 0.01
SIGMA = 0.5
P90, P99 = norm.ppf(0.90), norm.ppf(0.99)


@dataclass(frozen=True)
class Scenario:
    name: str
    canary_errors: float = STABLE_ERRORS
    latency_factor: float = 1.0
    load: float = 1000.0
    bursty: bool = False

    @property
    def regression(self) -> bool:
        return self.canary_errors > STABLE_ERRORS or self.latency_factor > 1


SCENARIOS = (
    Scenario("E1 errors 1% → 2%", canary_errors=0.02),
    Scenario("L1 latency × 1.2", latency_factor=1.2),
    Scenario("A/A"),
    Scenario("A/A bursty errors", bursty=True),
    Scenario("A/A low traffic", load=100.0),
)


@dataclass
class Streams:
    """Per-window counts, shape (runs, windows): requests, errors, slow requests."""

    canary: np.ndarray
    stable: np.ndarray
    canary_errors: np.ndarray
    stable_errors: np.ndarray
    canary_slow: np.ndarray
    stable_slow: np.ndarray
    interval: float


def simulate(scenario: Scenario, runs: int, interval: float, rng: np.random.Generator) -> Streams:
    windows = int(HOUR / interval)
    t = np.arange(windows) * interval
    phase = rng.uniform(0, 2 * math.pi, size=(runs, 1))
    multiplier = 1 + 0.3 * np.sin(2 * math.pi * t / 900 + phase)  # same on both arms
    mean = scenario.load * interval * multiplier
    canary = rng.poisson(mean * CANARY_SHARE)
    stable = rng.poisson(mean * (1 - CANARY_SHARE))
    burst = np.ones((runs, windows))
    if scenario.bursty:  # 5% of windows have 5× the errors, on both arms alike
        burst = np.where(rng.random((runs, windows)) < 0.05, 5.0, 1.0)
    stable_rate = np.minimum(STABLE_ERRORS * burst, 1)
    canary_rate = np.minimum(scenario.canary_errors * burst, 1)
    slow = 1 - norm.cdf(P90 - math.log(scenario.latency_factor) / SIGMA)
    return Streams(
        canary=canary,
        stable=stable,
        canary_errors=rng.binomial(canary, canary_rate),
        stable_errors=rng.binomial(stable, stable_rate),
        canary_slow=rng.binomial(canary, slow),
        stable_slow=rng.binomial(stable, 0.10),
        interval=interval,
    )


# -- judges: each returns the detection window index per run (windows if never) ------------


def sequential(tolerance: float, alpha: float = ALPHA) -> Callable[[Streams], np.ndarray]:
    """Ours: the e-process on errors (0.8 α) and on p90 exceedances (0.2 α)."""
    error_bound = math.log(1 / (alpha * ERROR_SHARE_OF_ALPHA))
    slow_bound = math.log(1 / (alpha * (1 - ERROR_SHARE_OF_ALPHA)))

    def judge(s: Streams) -> np.ndarray:
        errors = _log_e_values(s.canary_errors, s.stable_errors, s, tolerance)
        slow = _log_e_values(s.canary_slow, s.stable_slow, s, tolerance)
        return np.minimum(_first(errors >= error_bound), _first(slow >= slow_bound))

    return judge


def _log_e_values(
    canary_events: np.ndarray, stable_events: np.ndarray, s: Streams, tolerance: float
) -> np.ndarray:
    """ln E after each window, shape (runs, windows), exactly as CountComparison computes it."""
    total = s.canary + s.stable
    share = np.where(total > 0, s.canary / np.maximum(total, 1), 0.5)[..., None]
    g = np.asarray(ALTERNATIVES)
    q0 = share * tolerance / (share * tolerance + 1 - share)
    q = share * tolerance * g / (share * tolerance * g + 1 - share)
    with np.errstate(divide="ignore", invalid="ignore"):  # windows without traffic: masked
        steps = canary_events[..., None] * np.log(q / q0) + stable_events[..., None] * np.log(
            (1 - q) / (1 - q0)
        )
    counted = ((s.canary > 0) & (s.stable > 0))[..., None]
    log_lr = np.cumsum(np.where(counted, steps, 0.0), axis=1)
    top = log_lr.max(axis=2, keepdims=True)
    return (top + np.log(np.exp(log_lr - top).mean(axis=2, keepdims=True)))[..., 0]


def threshold(bounds: tuple[float, float]) -> Callable[[Streams], np.ndarray]:
    """Flagger style: 60-s windows, rollback at the first check over a bound."""

    def judge(streams: Streams) -> np.ndarray:
        error_share, slow_share = _minute_shares(streams)
        per_minute = (error_share > bounds[0]) | (slow_share > bounds[1])
        minute = int(60 / streams.interval)
        first = _first(per_minute)
        return np.where(
            first < per_minute.shape[1], (first + 1) * minute - 1, streams.canary.shape[1]
        )

    return judge


def _minute_shares(streams: Streams) -> tuple[np.ndarray, np.ndarray]:
    minute = int(60 / streams.interval)
    runs, windows = streams.canary.shape
    shape = (runs, windows // minute, minute)
    requests = streams.canary[:, : shape[1] * minute].reshape(shape).sum(axis=2)
    errors = streams.canary_errors[:, : shape[1] * minute].reshape(shape).sum(axis=2)
    slow = streams.canary_slow[:, : shape[1] * minute].reshape(shape).sum(axis=2)
    safe = np.maximum(requests, 1)
    return errors / safe, slow / safe


def tune_threshold(maxima: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Bounds giving each check kind half the 1%-per-hour false-alarm budget on A/A runs,
    from each run's highest minute (error share, slow share)."""
    quantile = 1 - BUDGET / 2
    errors = np.concatenate([m[0] for m in maxima])
    slow = np.concatenate([m[1] for m in maxima])
    return float(np.quantile(errors, quantile)), float(np.quantile(slow, quantile))


def minute_maxima(aa: Streams) -> tuple[np.ndarray, np.ndarray]:
    error_share, slow_share = _minute_shares(aa)
    return error_share.max(axis=1), slow_share.max(axis=1)


def mann_whitney(streams: Streams) -> np.ndarray:
    """Kayenta style: one point per minute per arm (its error rate, its slow share); every
    minute from 5 points on, a one-sided Mann-Whitney U test at 98% confidence."""
    minute = int(60 / streams.interval)
    runs, windows = streams.canary.shape
    detected = np.full(runs, windows)
    points = [
        (_per_minute(streams.canary_errors, streams.canary, minute),
         _per_minute(streams.stable_errors, streams.stable, minute)),
        (_per_minute(streams.canary_slow, streams.canary, minute),
         _per_minute(streams.stable_slow, streams.stable, minute)),
    ]  # fmt: skip
    for end in range(5, windows // minute + 1):
        for canary, stable in points:
            p = mannwhitneyu(canary[:, :end], stable[:, :end], alternative="greater", axis=1).pvalue
            newly = (p < 0.02) & (detected == windows)
            detected[newly] = end * minute - 1
    return detected


def _per_minute(events: np.ndarray, requests: np.ndarray, minute: int) -> np.ndarray:
    runs, windows = requests.shape
    shape = (runs, windows // minute, minute)
    used = shape[1] * minute
    return events[:, :used].reshape(shape).sum(axis=2) / np.maximum(
        requests[:, :used].reshape(shape).sum(axis=2), 1
    )


def _first(hit: np.ndarray) -> np.ndarray:
    """Index of the first True along axis 1; the length where there is none."""
    return np.where(hit.any(axis=1), hit.argmax(axis=1), hit.shape[1])


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Outcomes:
    """Per run: when it was rolled back (seconds), whether, and what the canary served."""

    seconds: np.ndarray
    caught: np.ndarray
    requests: np.ndarray
    extra_errors: np.ndarray

    @classmethod
    def of(cls, detected: np.ndarray, streams: Streams) -> Outcomes:
        windows = streams.canary.shape[1]
        served = np.arange(windows)[None, :] <= detected[:, None]
        extra = ((streams.canary_errors - streams.canary * STABLE_ERRORS) * served).sum(axis=1)
        return cls(
            seconds=(detected + 1) * streams.interval,
            caught=detected < windows,
            requests=(streams.canary * served).sum(axis=1),
            extra_errors=np.maximum(extra, 0),
        )

    @classmethod
    def joined(cls, parts: list[Outcomes]) -> Outcomes:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__annotations__))


def summarise(o: Outcomes, scenario: Scenario) -> dict[str, str]:
    row = {"rolled back in 1 h": f"{o.caught.mean():.2%}"}
    if not scenario.regression:
        return row
    times = o.seconds[o.caught]
    row["median s"] = f"{np.median(times):.0f}" if times.size else "-"
    row["p95 s"] = f"{np.quantile(times, 0.95):.0f}" if o.caught.mean() >= 0.95 else "> 1 h"
    for limit in (30, 60, 300):
        row[f"by {limit} s"] = f"{(o.caught & (o.seconds <= limit)).mean():.0%}"
    row["canary requests"] = f"{np.median(o.requests):.0f}"
    row["extra errors"] = f"{np.median(o.extra_errors):.0f}"
    return row


def check_against_the_real_class(streams: Streams, tolerance: float, runs: int = 3) -> None:
    """The vectorised statistic must equal CountComparison's on the same counts."""
    fast = _log_e_values(streams.canary_errors, streams.stable_errors, streams, tolerance)
    for run in range(runs):
        test = CountComparison(tolerance=tolerance)
        for w in range(0, streams.canary.shape[1], 97):
            for k in range(w - 96 if w else 0, w + 1):
                test = test.observe(
                    int(streams.canary_errors[run, k]),
                    int(streams.canary[run, k]),
                    int(streams.stable_errors[run, k]),
                    int(streams.stable[run, k]),
                )
            assert math.isclose(test.log_e_value, fast[run, w], rel_tol=1e-9, abs_tol=1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="seeded runs per scenario")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between checks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--tolerance", type=float, default=TOLERANCE, help="rate ratio the sequential judge allows"
    )
    parser.add_argument(
        "--alpha", type=float, default=ALPHA, help="the sequential judge's alpha (spec default)"
    )
    args = parser.parse_args()

    started = time.monotonic()
    rng = np.random.default_rng(args.seed)
    chunks = [min(CHUNK, args.runs - done) for done in range(0, args.runs, CHUNK)]
    aa = [minute_maxima(simulate(SCENARIOS[2], n, args.interval, rng)) for n in chunks]
    bounds = tune_threshold(aa)
    judges = {
        "sequential": sequential(args.tolerance, args.alpha),
        "threshold": threshold(bounds),
        "mann-whitney": mann_whitney,
    }
    print(
        f"{args.runs} runs per scenario, checks every {args.interval:g} s, seed {args.seed}, "
        f"sequential tolerance {args.tolerance:g}, alpha {args.alpha:g}"
    )
    print(f"threshold judge tuned to errors > {bounds[0]:.2%}, p90-slow > {bounds[1]:.2%}")
    for scenario in SCENARIOS:
        results: dict[str, list[Outcomes]] = {name: [] for name in judges}
        for n in chunks:
            streams = simulate(scenario, n, args.interval, rng)
            if scenario is SCENARIOS[0] and not results["sequential"]:
                check_against_the_real_class(streams, args.tolerance)
            for name, judge in judges.items():
                results[name].append(Outcomes.of(judge(streams), streams))
        print(f"\n{scenario.name}")
        for name, parts in results.items():
            row = summarise(Outcomes.joined(parts), scenario)
            print(f"  {name:<13}" + "  ".join(f"{k}: {v}" for k, v in row.items()))
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
