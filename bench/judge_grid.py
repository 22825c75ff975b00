"""The product's judge on a grid of simulated services, A/A and regressions, seeded.

    python -m bench.judge_grid --quick             # 7 cells, 50 A/A and 20 regression runs
    python -m bench.judge_grid                     # 27 cells, 400 and 100 runs (~1 h, 2 cores)
    python -m bench.judge_grid --cpu-only          # only the cost of one judge_check call
    python -m bench.judge_grid [--runs N] [--regression-runs N] [--processes 2] [--seed 1]
        [--limits-alpha A] [--alpha A] [--min-requests N] [--cells SUBSTRING,...] [--quick]

The judge under test is the product's public API and nothing else:
measure_baseline (stable alone for the policy's `baseline`, 60 s by default), start_stage
at each stage's first sample, judge_check at every check; a deployment is rolled back at
the first verdict with `rollback`. The policy is AnalysisSpec's defaults (mode both,
DEFAULT_METRICS) with the check interval of the cell and the overrides given.

Simulated service (numpy, seeded per cell, scenario and run): R req/s in total times a
multiplier shared by both arms, 1 + 0.3 sin(2 pi t / 900 + phase); per check and arm,
Poisson requests (the canary gets share w), binomial errors, and a multinomial over the
histogram's buckets from a lognormal latency (sigma 0.5; stable's true p99 at a fraction
of the 200 ms limit). Errors are drawn independently of latency. Counters are cumulative
per arm, stable's from the start of the baseline, as an Envoy would report them.

Scenarios: A/A (all stages of the plan); regressions on the first stage only, from the
canary's first check (or from the middle of the stage, "mid-stage"): canary errors x3
(stable + 2 points where stable has none), latency x1.5, dead canary (every request 5xx),
+250 ms on every canary request, and a canary that poisons stable (both arms at 5% errors
once the canary has traffic).

Competitors, on the same streams (cells marked `compare`), both rolling back at their
first failed check and never lapsing for lack of data:
- point-estimate limits (the previous product's rule): per check, the canary's window
  error rate <= 1% and p99 by Prometheus-style interpolation <= 200 ms, each judged only
  with >= 20 canary requests in the window; availability since the stage began >= 99.9%
  once it has >= 20 requests.
- Flagger-style thresholds: every 60 s, over the last 60 s, request success rate >= 99% and
  p99 (histogram_quantile interpolation) <= 500 ms, Flagger's built-in defaults; threshold
  1 (rollback at the first failed check); a minute without canary requests fails, as
  Flagger's "no values found" halts the check like a failed threshold.

Targets: A/A rolled back in <= 1% of deployments in every cell; dead canary and +250 ms
detected within 2 checks in >= 95% of runs (N/A where no level-alpha test could: fewer
than the bad requests needed are expected in 2 checks); poisoning rolled back in every run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from multiprocessing import Pool
from statistics import NormalDist

import numpy as np

from bench.judge_grid_cells import (
    AA,
    CELLS,
    QUICK_CELLS,
    SCENARIOS,
    Cell,
    Scenario,
    uncovered,
)
from sluicegate.analysis import (
    ArmCounters,
    Sample,
    Verdict,
    judge_check,
    measure_baseline,
    start_stage,
)
from sluicegate.spec import AnalysisSpec, EnvoyStats, SequentialPolicy

SIGMA = 0.5
Z99 = NormalDist().inv_cdf(0.99)
LIMIT_MS = 200.0
T0 = datetime(2025, 1, 1, tzinfo=UTC)
CHUNK = 25  # runs per task
NEW, POINT, FLAGGER = "new judge", "point-estimate", "flagger-style"

# Point-estimate limits (the previous product's rule).
POINT_MIN_REQUESTS = 20
POINT_ERROR_RATE, POINT_P99_MS, POINT_AVAILABILITY = 0.01, 200.0, 0.999
# Flagger-style: built-in metrics, interval 1m, threshold 1.
FLAGGER_PERIOD, FLAGGER_SUCCESS, FLAGGER_P99_MS = 60.0, 0.99, 500.0


# -- simulation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """One arm's counts per check window: columns requests, errors, then requests per
    histogram bucket (not cumulative), one row per window."""

    table: np.ndarray

    @property
    def requests(self) -> np.ndarray:
        return self.table[:, 0]

    @property
    def errors(self) -> np.ndarray:
        return self.table[:, 1]

    @property
    def buckets(self) -> np.ndarray:
        return self.table[:, 2:]


@dataclass(frozen=True)
class StageStream:
    share: float
    start: float  # seconds since the first stage began
    interval: float
    canary: Counts
    stable: Counts
    onset: int  # the first regressed window (its length when none is)

    @property
    def windows(self) -> int:
        return self.canary.table.shape[0]


@dataclass(frozen=True)
class RunStream:
    baseline: Counts  # stable alone, one window of the policy's baseline
    stages: tuple[StageStream, ...]
    baseline_seconds: float

    @property
    def onset_seconds(self) -> float:
        first = self.stages[0]
        return first.onset * first.interval


def median_ms(cell: Cell) -> float:
    """Stable's median latency: its p99 at `cell.p99` of the limit."""
    return cell.p99 * LIMIT_MS / math.exp(Z99 * SIGMA)


@lru_cache(maxsize=1024)
def bucket_shares(
    bounds: tuple[float, ...], median: float, factor: float, add_ms: float
) -> np.ndarray:
    """Share of requests per bucket for latency `add_ms + factor x lognormal(median)`."""
    normal = NormalDist()

    def cdf(bound: float) -> float:
        if math.isinf(bound):
            return 1.0
        if bound <= add_ms:
            return 0.0
        return normal.cdf(math.log((bound - add_ms) / (median * factor)) / SIGMA)

    cumulative = np.array([cdf(b) for b in bounds])
    shares = np.diff(np.concatenate(([0.0], cumulative)))
    return np.maximum(shares, 0.0) / shares.sum()


def draw(
    rng: np.random.Generator, mean: np.ndarray, error_share: np.ndarray, shares: np.ndarray
) -> Counts:
    """Poisson requests, binomial errors, multinomial histogram (shares per window)."""
    requests = rng.poisson(mean)
    errors = rng.binomial(requests, error_share)
    buckets = rng.multinomial(requests, shares)
    return Counts(np.column_stack((requests, errors, buckets)).astype(np.int64))


def simulate(
    cell: Cell, scenario: Scenario, rng: np.random.Generator, baseline_seconds: float
) -> RunStream:
    """One run's streams: the baseline, then every stage (the first only for regressions)."""
    phase = rng.uniform(0, 2 * math.pi)

    def multiplier(t: np.ndarray) -> np.ndarray:
        return 1 + 0.3 * np.sin(2 * math.pi * t / 900 + phase)

    base = bucket_shares(cell.bounds, median_ms(cell), 1.0, 0.0)
    bad = bucket_shares(
        cell.bounds, median_ms(cell), scenario.latency_factor, scenario.latency_add_ms
    )
    middle = np.array([-baseline_seconds / 2])
    baseline = draw(
        rng,
        cell.traffic * baseline_seconds * multiplier(middle),
        np.array([cell.errors]),
        base[None, :],
    )
    plan = cell.stages[:1] if scenario.regression else cell.stages
    stages, start = [], 0.0
    for index, (share, seconds) in enumerate(plan):
        windows = round(seconds / cell.interval)
        onset = round(scenario.onset * windows) if index == 0 and scenario.regression else windows
        regressed = np.arange(windows) >= onset
        mean = (
            cell.traffic
            * cell.interval
            * multiplier(start + (np.arange(windows) + 0.5) * cell.interval)
        )
        canary_errors = np.where(regressed, scenario.canary_errors(cell.errors), cell.errors)
        stable_errors = np.where(regressed, scenario.stable_errors(cell.errors), cell.errors)
        canary_shares = np.where(regressed[:, None], bad[None, :], base[None, :])
        stages.append(
            StageStream(
                share=share,
                start=start,
                interval=cell.interval,
                canary=draw(rng, mean * share, canary_errors, canary_shares),
                stable=draw(rng, mean * (1 - share), stable_errors, base[None, :]),
                onset=onset,
            )
        )
        start += seconds
    return RunStream(baseline=baseline, stages=tuple(stages), baseline_seconds=baseline_seconds)


def run_rng(seed: int, cell: Cell, scenario: Scenario, run: int) -> np.random.Generator:
    """The same streams for a (cell, scenario, run) whatever the chunking or process."""
    keys = (zlib.crc32(cell.name.encode()), zlib.crc32(scenario.name.encode()))
    return np.random.default_rng([seed, *keys, run])


# -- the judge under test: the product's public API ------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """Where one judge rolled one run back; stage None: never."""

    stage: int | None = None
    at: float = math.inf  # seconds since that stage began
    checks: int = 0  # that judge's checks since that stage began
    period: float = 1.0  # seconds per check of that judge
    cause: str = ""


NEVER = Outcome()


def cumulative(table: np.ndarray, before: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    """Rows of cumulative counters (buckets cumulative by bound, as `le`) after each window,
    and the running totals after the last (buckets per bucket, for the next stage)."""
    totals = before + np.cumsum(table, axis=0)
    shown = totals.copy()
    shown[:, 2:] = np.cumsum(totals[:, 2:], axis=1)
    return shown.tolist(), totals[-1]


def counters(row: Sequence[int], bounds: tuple[float, ...]) -> ArmCounters:
    return ArmCounters(
        requests=row[0], errors=row[1], latency_buckets=tuple(zip(bounds, row[2:], strict=True))
    )


def cause_of(verdict: Verdict) -> str:
    """`limit error_rate`, `stable_limit latency_p99_ms`, `compare errors`, or `lapsed`."""
    parts = [f"{r.kind} {r.metric}" for r in verdict.results if r.status == "breach"]
    parts += [f"compare {c.metric}" for c in verdict.comparisons if c.status == "breach"]
    if not parts:
        parts = ["lapsed" if verdict.lapsed else f"rollback ({verdict.status})"]
    return " + ".join(parts)


def judge_new(
    run: RunStream,
    policy: AnalysisSpec,
    bounds: tuple[float, ...],
    timings: list[int] | None = None,
) -> Outcome:
    """The product's judge over the whole run; stops at its first rollback. With `timings`,
    the nanoseconds of every judge_check call are appended to it."""
    zeros = np.zeros(2 + len(bounds), dtype=np.int64)
    nothing = counters(zeros.tolist(), bounds)
    (stable_row,), stable_totals = cumulative(run.baseline.table, zeros)
    canary_totals = zeros
    previous = Sample(at=T0, stable=counters(stable_row, bounds), canary=nothing)
    baseline = None
    if run.baseline_seconds > 0:
        before = Sample(
            at=T0 - timedelta(seconds=run.baseline_seconds), stable=nothing, canary=nothing
        )
        baseline = measure_baseline(before, previous, policy)
    for index, stage in enumerate(run.stages):
        stable_rows, stable_totals = cumulative(stage.stable.table, stable_totals)
        canary_rows, canary_totals = cumulative(stage.canary.table, canary_totals)
        state = start_stage(previous, policy, baseline)
        for k in range(stage.windows):
            current = Sample(
                at=T0 + timedelta(seconds=stage.start + (k + 1) * stage.interval),
                stable=counters(stable_rows[k], bounds),
                canary=counters(canary_rows[k], bounds),
            )
            if timings is None:
                state, verdict = judge_check(state, previous, current, policy)
            else:
                began = time.perf_counter_ns()
                state, verdict = judge_check(state, previous, current, policy)
                timings.append(time.perf_counter_ns() - began)
            previous = current
            if verdict.rollback:
                return Outcome(
                    index, (k + 1) * stage.interval, k + 1, stage.interval, cause_of(verdict)
                )
    return NEVER


# -- competitors, vectorised on the same streams ---------------------------------------------


def histogram_quantile(q: float, buckets: np.ndarray, bounds: tuple[float, ...]) -> np.ndarray:
    """Prometheus's histogram_quantile per row of per-bucket counts: linear interpolation
    inside the bucket holding the rank (from 0 in the first), the largest finite bound if
    the rank falls in +Inf; NaN without requests."""
    edges = np.asarray(bounds)
    counts = np.cumsum(buckets, axis=1)
    total = counts[:, -1]
    rank = q * total
    found = np.argmax(counts >= rank[:, None], axis=1)
    rows = np.arange(len(found))
    below = np.where(found > 0, counts[rows, np.maximum(found - 1, 0)], 0)
    lower = np.where(found > 0, edges[np.maximum(found - 1, 0)], 0.0)
    upper = edges[found]
    inside = np.maximum(counts[rows, found] - below, 1)
    with np.errstate(invalid="ignore"):
        value = lower + (upper - lower) * (rank - below) / inside
    value = np.where(found == len(bounds) - 1, edges[-2], value)
    return np.where(total > 0, value, np.nan)


def first_breach(failed: dict[str, np.ndarray], stage: int, period: float) -> Outcome | None:
    """The first check any rule failed, named by the rules failing there."""
    any_failed = np.logical_or.reduce(list(failed.values()))
    if not any_failed.any():
        return None
    k = int(np.argmax(any_failed))
    cause = " + ".join(name for name, hits in failed.items() if hits[k])
    return Outcome(stage, (k + 1) * period, k + 1, period, cause)


def judge_point_estimate(run: RunStream, bounds: tuple[float, ...]) -> Outcome:
    for index, stage in enumerate(run.stages):
        c = stage.canary
        judged = c.requests >= POINT_MIN_REQUESTS
        rate = c.errors / np.maximum(c.requests, 1)
        with np.errstate(invalid="ignore"):
            slow = histogram_quantile(0.99, c.buckets, bounds) > POINT_P99_MS
        served, failed = np.cumsum(c.requests), np.cumsum(c.errors)
        availability = 1 - failed / np.maximum(served, 1)
        outcome = first_breach(
            {
                "error_rate": judged & (rate > POINT_ERROR_RATE),
                "latency_p99_ms": judged & slow,
                "availability": (served >= POINT_MIN_REQUESTS)
                & (availability < POINT_AVAILABILITY),
            },
            index,
            stage.interval,
        )
        if outcome is not None:
            return outcome
    return NEVER


def judge_flagger(run: RunStream, bounds: tuple[float, ...]) -> Outcome:
    for index, stage in enumerate(run.stages):
        per = max(round(FLAGGER_PERIOD / stage.interval), 1)
        minutes = stage.windows // per
        table = stage.canary.table[: minutes * per].reshape(minutes, per, -1).sum(axis=1)
        requests, errors = table[:, 0], table[:, 1]
        success = 1 - errors / np.maximum(requests, 1)
        with np.errstate(invalid="ignore"):
            slow = histogram_quantile(0.99, table[:, 2:], bounds) > FLAGGER_P99_MS
        outcome = first_breach(
            {
                "no data": requests == 0,
                "success_rate": (requests > 0) & (success < FLAGGER_SUCCESS),
                "p99": slow,
            },
            index,
            per * stage.interval,
        )
        if outcome is not None:
            return outcome
    return NEVER


# -- work for the pool -----------------------------------------------------------------------


@dataclass(frozen=True)
class Overrides:
    limits_alpha: float | None = None
    alpha: float | None = None
    min_requests: int | None = None


def make_policy(interval: float, overrides: Overrides) -> AnalysisSpec:
    """The spec's defaults, the cell's interval and the tuning flags, validated."""
    fields: dict[str, object] = {
        "source": EnvoyStats(admin_url="http://127.0.0.1:9901"),
        "interval": timedelta(seconds=interval),
    }
    if overrides.limits_alpha is not None:
        fields["limits_alpha"] = overrides.limits_alpha
    if overrides.alpha is not None:
        fields["sequential"] = SequentialPolicy(alpha=overrides.alpha)
    if overrides.min_requests is not None:
        fields["min_requests"] = overrides.min_requests
    return AnalysisSpec.model_validate(fields)


@dataclass(frozen=True)
class Task:
    cell_index: int
    cell: Cell
    scenario_index: int
    scenario: Scenario
    first_run: int
    runs: int
    seed: int
    overrides: Overrides

    @property
    def cost(self) -> float:
        """Checks to judge, roughly (regressions: the first stage, often cut short)."""
        stages = self.cell.stages[:1] if self.scenario.regression else self.cell.stages
        return self.runs * sum(seconds for _, seconds in stages) / self.cell.interval


@dataclass(frozen=True)
class RunResult:
    cell_index: int
    scenario_index: int
    onset_seconds: float
    outcomes: dict[str, Outcome]
    calls: int  # judge_check calls the new judge made


def calls_made(stream: RunStream, outcome: Outcome) -> int:
    if outcome.stage is None:
        return sum(stage.windows for stage in stream.stages)
    return sum(stage.windows for stage in stream.stages[: outcome.stage]) + outcome.checks


def run_task(task: Task) -> list[RunResult]:
    policy = make_policy(task.cell.interval, task.overrides)
    bounds = task.cell.bounds
    results = []
    for run in range(task.first_run, task.first_run + task.runs):
        rng = run_rng(task.seed, task.cell, task.scenario, run)
        stream = simulate(task.cell, task.scenario, rng, policy.baseline.total_seconds())
        outcomes = {NEW: judge_new(stream, policy, bounds)}
        if task.cell.compare:
            outcomes[POINT] = judge_point_estimate(stream, bounds)
            outcomes[FLAGGER] = judge_flagger(stream, bounds)
        calls = calls_made(stream, outcomes[NEW])
        results.append(
            RunResult(task.cell_index, task.scenario_index, stream.onset_seconds, outcomes, calls)
        )
    return results


def tasks_for(
    cells: Sequence[Cell], runs: int, regression_runs: int, seed: int, overrides: Overrides
) -> list[Task]:
    tasks = []
    for c, cell in enumerate(cells):
        for s, scenario in enumerate(SCENARIOS):
            total = regression_runs if scenario.regression else runs
            tasks += [
                Task(c, cell, s, scenario, first, min(CHUNK, total - first), seed, overrides)
                for first in range(0, total, CHUNK)
            ]
    return sorted(tasks, key=lambda t: -t.cost)  # the longest first: the pool ends together


def run_all(tasks: list[Task], processes: int) -> list[RunResult]:
    results: list[RunResult] = []
    started = time.monotonic()
    with Pool(processes) as pool:
        for done, part in enumerate(pool.imap_unordered(run_task, tasks), start=1):
            results += part
            if done % max(len(tasks) // 20, 1) == 0 or done == len(tasks):
                elapsed = time.monotonic() - started
                print(f"  {done}/{len(tasks)} tasks, {elapsed:.0f} s", file=sys.stderr, flush=True)
    return results


# -- reporting -------------------------------------------------------------------------------

Grouped = dict[tuple[int, int], list[RunResult]]


def grouped(results: Iterable[RunResult]) -> Grouped:
    groups: Grouped = defaultdict(list)
    for result in results:
        groups[(result.cell_index, result.scenario_index)].append(result)
    return groups


@dataclass(frozen=True)
class Detection:
    """A regression's detection over its runs, by one judge."""

    runs: int
    seconds: np.ndarray  # since the onset; inf: not in the stage
    checks: np.ndarray
    early: Counter[str]  # rolled back before the onset (false rollbacks), by cause
    causes: Counter[str]

    @classmethod
    def of(cls, results: list[RunResult], judge: str) -> Detection:
        seconds, checks, early, causes = [], [], Counter[str](), Counter[str]()
        for r in results:
            o = r.outcomes[judge]
            if o.stage is None:
                seconds.append(math.inf)
                checks.append(math.inf)
                continue
            if o.at <= r.onset_seconds:
                early[o.cause] += 1
                seconds.append(math.inf)
                checks.append(math.inf)
                continue
            seconds.append(o.at - r.onset_seconds)
            checks.append(o.checks - math.floor(r.onset_seconds / o.period + 1e-9))
            causes[o.cause] += 1
        return cls(len(results), np.array(seconds), np.array(checks), early, causes)

    @property
    def detected(self) -> int:
        return int(np.isfinite(self.seconds).sum())

    def quantile(self, values: np.ndarray, q: float) -> float:
        return float(np.quantile(values, q, method="inverted_cdf"))

    def within(self, checks: int) -> float:
        return float((self.checks <= checks).mean())


def when(value: float, unit: str) -> str:
    """`12 s`, `1 check`, `3 checks`, `never`."""
    if math.isinf(value):
        return "never"
    plural = "" if unit == "s" or value == 1 else "s"
    return f"{value:.0f} {unit}{plural}"


def detection_text(d: Detection) -> str:
    text = (
        f"detected {d.detected}/{d.runs} in stage; median "
        f"{when(d.quantile(d.seconds, 0.5), 's')} ({when(d.quantile(d.checks, 0.5), 'check')}), "
        f"p95 {when(d.quantile(d.seconds, 0.95), 's')} "
        f"({when(d.quantile(d.checks, 0.95), 'check')})"
    )
    if d.early:
        by = ", ".join(f"{cause} {n}" for cause, n in d.early.most_common())
        text += f"; {d.early.total()} FALSE rollbacks before the onset (by {by})"
    if d.causes:
        top = ", ".join(f"{cause} {n}" for cause, n in d.causes.most_common(3))
        text += f"; by {top}"
    return text


def aa_summary(results: list[RunResult], judge: str) -> tuple[int, int, Counter[str], Counter[int]]:
    """(rolled back, runs, causes, stage of each rollback)."""
    rolled = [r.outcomes[judge] for r in results if r.outcomes[judge].stage is not None]
    causes = Counter(o.cause for o in rolled)
    stages = Counter(o.stage for o in rolled if o.stage is not None)
    return len(rolled), len(results), causes, stages


def bad_requests_needed(policy: AnalysisSpec) -> int:
    """Fewest bad requests any level-alpha test of `share <= b` can breach on: under share
    b, n bad requests in a row have probability b^n, which must be below alpha."""
    return math.ceil(math.log(policy.limits_alpha) / math.log(policy.metrics[0].max or 0.01))


def poisson_at_least(mean: float, n: int) -> float:
    return 1 - sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(n))


def quick_target(cell: Cell, d: Detection, needed: int) -> tuple[str, str]:
    """Within 2 checks in >= 95% of runs, or N/A where no level-alpha test could."""
    expected = 2 * cell.canary_per_check()
    within = f"{d.within(2):.0%}"
    if poisson_at_least(expected, needed) < 0.95:
        return "N/A", f"{within} (~{expected:g} canary requests in 2 checks, {needed} bad needed)"
    return ("PASS" if d.within(2) >= 0.95 else "FAIL"), within


@dataclass
class Verdicts:
    """Per cell: (PASS/FAIL/N/A or "" for information, detail) per column of the summary."""

    rows: list[tuple[str, dict[str, tuple[str, str]]]]

    def tally(self) -> Counter[str]:
        return Counter(status for _, row in self.rows for status, _ in row.values() if status)


def aa_line(cell: Cell, results: list[RunResult]) -> tuple[tuple[str, str], str]:
    rolled, runs, causes, stages = aa_summary(results, NEW)
    share = rolled / runs
    status = "PASS" if share <= 0.01 else "FAIL"
    text = f"  {'A/A':<18}{rolled}/{runs} rolled back ({share:.2%})  [{status}]"
    if causes:
        text += "; by " + ", ".join(f"{c} {n}" for c, n in causes.most_common())
    if cell.plan == "default" and stages:
        text += "; in stage " + ", ".join(f"{s + 1}: {n}" for s, n in sorted(stages.items()))
    return (status, f"{share:.1%}"), text


def report_cell(
    index: int, cell: Cell, groups: Grouped, policy: AnalysisSpec, verdicts: Verdicts
) -> None:
    print(f"\n[{index + 1}] {cell.name}  (~{cell.canary_per_check():g} canary requests a check)")
    row: dict[str, tuple[str, str]] = {}
    row["A/A"], text = aa_line(cell, groups[(index, 0)])
    print(text)
    needed = bad_requests_needed(policy)
    for s, scenario in enumerate(SCENARIOS):
        if not scenario.regression:
            continue
        d = Detection.of(groups[(index, s)], NEW)
        if scenario.must_be_quick:
            row[scenario.name] = quick_target(cell, d, needed)
        elif scenario.poison is not None:
            every = d.detected == d.runs
            row[scenario.name] = ("PASS" if every else "FAIL"), f"{d.detected}/{d.runs}"
        else:
            row[scenario.name] = "", when(d.quantile(d.seconds, 0.5), "s")
        status, detail = row[scenario.name]
        target = f"  [{status} {detail}]" if status else ""
        print(f"  {scenario.name:<18}{detection_text(d)}{target}")
    verdicts.rows.append((cell.name, row))


def report_comparison(index: int, cell: Cell, groups: Grouped) -> None:
    print(f"\n[{index + 1}] {cell.name}")
    judges = (NEW, POINT, FLAGGER)
    print(f"  {'scenario':<18}" + "".join(f"{j:<34}" for j in judges))
    for s, scenario in enumerate(SCENARIOS):
        cells = []
        for judge in judges:
            if not scenario.regression:
                rolled, runs, causes, _ = aa_summary(groups[(index, s)], judge)
                top = causes.most_common(1)[0][0] if causes else ""
                cells.append(f"{rolled / runs:.1%} {top}"[:33])
                continue
            d = Detection.of(groups[(index, s)], judge)
            median, p95 = d.quantile(d.seconds, 0.5), d.quantile(d.seconds, 0.95)
            early = f" ({d.early.total()} early)" if d.early else ""
            cells.append(
                f"{when(median, 's')} / {when(p95, 's')} / {d.detected / d.runs:.0%}{early}"
            )
        print(f"  {scenario.name:<18}" + "".join(f"{c:<34}" for c in cells))


def report_summary(verdicts: Verdicts) -> None:
    names = list(verdicts.rows[0][1]) if verdicts.rows else []
    print(
        "\nSummary: A/A share rolled back (target <= 1%); dead/+250 ms share within 2 checks "
        "(target >= 95%); poisoning runs rolled back (target all); others median detection"
    )
    print(f"  {'cell':<38}" + "".join(f"{n:<15}" for n in names))
    for name, row in verdicts.rows:
        shown = [f"{status} {detail.split(' (')[0]}".strip() for status, detail in row.values()]
        print(f"  {name:<38}" + "".join(f"{c:<15}" for c in shown))
    tally = verdicts.tally()
    print("  " + ", ".join(f"{k}: {tally[k]}" for k in ("PASS", "FAIL", "N/A") if tally[k]))


# -- CPU cost of one call ---------------------------------------------------------------------


def measure_cpu(overrides: Overrides, seed: int, calls: int) -> None:
    """Median and p95 of judge_check over the checks of whole default-plan A/A deployments
    at a realistic cell; the cost of building one check's Sample beside it."""
    cell = Cell(0.001, 0.6, 1000, 0.05, 10, "envoy", "default")
    policy = make_policy(cell.interval, overrides)
    timings: list[int] = []
    run = 0
    while len(timings) < calls:
        stream = simulate(cell, AA, run_rng(seed, cell, AA, run), policy.baseline.total_seconds())
        judge_new(stream, policy, cell.bounds, timings)
        run += 1
    rows, _ = cumulative(stream.stages[0].canary.table, np.zeros(2 + len(cell.bounds), np.int64))
    builds = []
    for row in rows[:1000]:
        began = time.perf_counter_ns()
        Sample(at=T0, stable=counters(row, cell.bounds), canary=counters(row, cell.bounds))
        builds.append(time.perf_counter_ns() - began)
    us = np.array(timings) / 1000
    print(
        f"judge_check CPU at {cell.name}: median {np.median(us):.0f} us, "
        f"p95 {np.quantile(us, 0.95):.0f} us over {len(us)} calls "
        f"({run} default-plan deployments); "
        f"building a check's Sample: median {np.median(builds) / 1000:.0f} us"
    )


# -- main ------------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cells and runs")
    parser.add_argument("--runs", type=int, help="A/A runs per cell (400; quick 50)")
    parser.add_argument("--regression-runs", type=int, help="runs per regression (100; 20)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cells", help="only cells whose name contains one of these (comma-separated)"
    )
    parser.add_argument("--limits-alpha", type=float, help="AnalysisSpec.limits_alpha")
    parser.add_argument("--alpha", type=float, help="AnalysisSpec.sequential.alpha")
    parser.add_argument("--min-requests", type=int, help="AnalysisSpec.min_requests")
    parser.add_argument("--cpu-calls", type=int, default=5000, help="judge_check calls timed")
    parser.add_argument("--cpu-only", action="store_true", help="only time judge_check")
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 50 if args.quick else 400
    if args.regression_runs is None:
        args.regression_runs = 20 if args.quick else 100
    return args


def describe_policy(policy: AnalysisSpec) -> str:
    rules = ", ".join(
        f"{m.metric} {m.max if m.max is not None else m.min:g} ({m.window})" for m in policy.metrics
    )
    return (
        f"policy: mode {policy.mode}, limits_alpha {policy.limits_alpha:g}, sequential alpha "
        f"{policy.sequential.alpha:g}, min_requests {policy.min_requests}, baseline "
        f"{policy.baseline.total_seconds():g} s; rules {rules}"
    )


def print_cells(cells: Sequence[Cell], args: argparse.Namespace) -> None:
    missing = uncovered(cells)
    coverage = "MISSING: " + ", ".join(missing) if missing else "every axis value and corner"
    print(
        f"\n{len(cells)} cells ({coverage}); {args.runs} A/A runs each, "
        f"{args.regression_runs} per regression, seed {args.seed}, {args.processes} processes"
    )
    for index, cell in enumerate(cells):
        marks = " [compared]" if cell.compare else ""
        print(f"  [{index + 1}] {cell.name}{marks}")


def main() -> None:
    args = arguments()
    started = time.monotonic()
    overrides = Overrides(args.limits_alpha, args.alpha, args.min_requests)
    print(describe_policy(make_policy(10, overrides)))
    measure_cpu(overrides, args.seed, args.cpu_calls)
    if args.cpu_only:
        return
    cells = QUICK_CELLS if args.quick else CELLS
    if args.cells:
        wanted = args.cells.split(",")
        cells = tuple(c for c in cells if any(part in c.name for part in wanted))
    print_cells(cells, args)
    tasks = tasks_for(cells, args.runs, args.regression_runs, args.seed, overrides)
    judged = time.monotonic()
    results = run_all(tasks, args.processes)
    groups = grouped(results)
    calls = sum(r.calls for r in results)
    wall = time.monotonic() - judged
    print(
        f"\n{len(results)} deployments, {calls:,} judge_check calls in {wall:.0f} s on "
        f"{args.processes} processes ({wall * args.processes / max(calls, 1) * 1e6:.0f} us per "
        "call and process, simulation and Sample building included)"
    )
    verdicts = Verdicts(rows=[])
    for index, cell in enumerate(cells):
        report_cell(index, cell, groups, make_policy(cell.interval, overrides), verdicts)
    report_summary(verdicts)
    compared = [(i, c) for i, c in enumerate(cells) if c.compare]
    if compared:
        print(
            "\nSide by side on the same streams (A/A: share rolled back and the main cause; "
            "regressions: median s / p95 s / share detected in the stage; a judge that rolls "
            "A/A runs back also 'detects' regressions that start at once)\n"
            f"  point-estimate: per check window error rate <= {POINT_ERROR_RATE:.0%} and "
            f"interpolated p99 <= {POINT_P99_MS:g} ms with >= {POINT_MIN_REQUESTS} canary "
            f"requests, stage availability >= {POINT_AVAILABILITY:.1%}; first breach rolls back\n"
            f"  flagger-style: every {FLAGGER_PERIOD:g} s over the last {FLAGGER_PERIOD:g} s, "
            f"success rate >= {FLAGGER_SUCCESS:.0%} and interpolated p99 <= "
            f"{FLAGGER_P99_MS:g} ms, no canary requests fails; threshold 1"
        )
        for index, cell in compared:
            report_comparison(index, cell, groups)
    print(f"\nelapsed {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
