"""What a spec would do on a service as it runs now: warnings before anything is deployed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sluicegate.analysis.baseline import Baseline, rule_text
from sluicegate.analysis.rules import is_latency
from sluicegate.spec import AnalysisSpec, Stage


class Advice(BaseModel):
    """One finding; `blocking` when the deployment could never promote or would always roll
    back, else a hint."""

    model_config = ConfigDict(frozen=True)

    blocking: bool
    text: str


def _blocking(text: str) -> Advice:
    return Advice(blocking=True, text=text)


def _hint(text: str) -> Advice:
    return Advice(blocking=False, text=text)


def spec_warnings(
    policy: AnalysisSpec, stages: tuple[Stage, ...], stable: Baseline
) -> list[Advice]:
    """Each way the spec could never promote, or would roll back every canary, on a service
    whose stable version measures as `stable` (one check's worth of its traffic), and hints."""
    if stable.requests == 0:
        return [_blocking("stable served no requests: no canary could ever be judged")]
    advice: list[Advice] = []
    for rule, measured in zip(policy.metrics, stable.rules, strict=False):
        name = rule_text(rule)
        if is_latency(rule) and measured.requests == 0:
            advice.append(
                _blocking(
                    f"{name} can never be judged: the latency histogram has no bucket bound "
                    f"at or above {rule.max:g} ms, so every stage would wait forever; add one"
                )
            )
            continue
        if is_latency(rule) and measured.slower_than_ms not in (None, rule.max):
            advice.append(
                _hint(
                    f"{name} counts requests slower than {measured.slower_than_ms:g} ms, the "
                    f"histogram's first bound above {rule.max:g} ms: add a bucket at "
                    f"{rule.max:g} ms to judge the limit exactly (see docs/SPEC.md)"
                )
            )
        if not measured.breaches:
            continue
        shown = measured.describe(rule)
        if policy.baseline.total_seconds() == 0:
            advice.append(
                _blocking(
                    f"{shown}: with analysis.baseline 0 every canary as good as stable would "
                    "be rolled back; set a baseline (the default is 60 s) or loosen the limit"
                )
            )
        else:
            advice.append(
                _hint(
                    f"{shown}: the canary will be held to stable's level instead (a limit "
                    "stable already breaches is not held against the canary)"
                )
            )
    advice += _traffic(policy, stages[0], stable)
    return advice


def _traffic(policy: AnalysisSpec, first: Stage, stable: Baseline) -> list[Advice]:
    """A first stage that cannot gather `min_requests` canary requests in its bake."""
    rate = stable.requests / stable.seconds if stable.seconds > 0 else 0.0
    bake = first.bake.total_seconds()
    expected = rate * first.weight / 100 * bake
    if not bake or expected >= policy.min_requests:
        return []
    return [
        _hint(
            f"at stable's {rate:.3g} req/s, stage {first.name} ({first.weight}% for {bake:g} s) "
            f"would see about {expected:.0f} canary requests, fewer than min_requests "
            f"{policy.min_requests}: it would wait past its bake"
        )
    ]
