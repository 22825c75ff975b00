"""The deployment report page: one self-contained HTML document, rendered offline in
headless Debian `chromium` driven by Playwright's Python package (no `playwright install`).

With SLUICEGATE_SCREENSHOTS=<dir> the browser test saves the page there as report.png;
without it, nothing is written outside pytest's tmp_path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

from frontends.client.report import report_page
from sluicegate.analysis.verdict import ComparisonResult, MetricResult, Verdict
from sluicegate.evidence import (
    ArmNumbers,
    CheckRecord,
    DeploymentEvidence,
    DeploymentSummary,
    EventRecord,
    StoreGap,
)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = os.environ.get("SLUICEGATE_SCREENSHOTS")
CHARTS = ("chart-weight", "chart-errors", "chart-latency", "chart-evidence")
T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
RUN = "run-1"
SERVICE = "checkout"
DRIFT = "envoy-2 sent 0% to the canary, expected 25%: put right"
GAP_ERROR = "connection refused"
INJECTED = "<script>alert('owned')</script>"
BREACH_LINE = (
    "error_rate: 180 of 600 canary requests failed in the last check (30%; at most 1% "
    "allowed), evidence 1e+30 of 1e+04"
)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _verdict(canary: ArmNumbers, stable: ArmNumbers, e_value: float, breach: bool) -> Verdict:
    """A limit on the canary's errors, one on stable's, a latency limit and a comparison."""
    status = "breach" if breach else "healthy"
    errors = MetricResult(
        metric="error_rate",
        window="check",
        value=canary.errors / canary.requests,
        bound=0.01,
        direction="max",
        requests=canary.requests,
        status=status,
        kind="limit",
        events=canary.errors,
        share_bound=0.01,
        checks=1,
        e_value=1e30 if breach else e_value,
        evidence_bound=1e4,
    )
    stable_errors = errors.model_copy(
        update={
            "kind": "stable_limit",
            "status": "healthy",
            "requests": stable.requests,
            "events": stable.errors,
            "e_value": 0.2,
        }
    )
    slow = MetricResult(
        metric="latency_p99_ms",
        window="check",
        value=canary.p99_ms,
        bound=250,
        direction="max",
        requests=canary.requests,
        status="healthy",
        kind="limit",
        events=2,
        share_bound=0.01,
        checks=1,
        slower_than_ms=250,
        e_value=e_value / 3,
        evidence_bound=1e4,
    )
    comparison = ComparisonResult(
        metric="errors",
        canary_events=canary.errors,
        canary_requests=canary.requests,
        stable_events=stable.errors,
        stable_requests=stable.requests,
        rate_ratio=(canary.errors / canary.requests) / max(stable.errors / stable.requests, 1e-9),
        ratio_interval=None,
        e_value=5e5 if breach else e_value * 2,
        bound=1e4,
        tolerance=1.5,
        status=status,
    )
    verdict = Verdict.of((errors, stable_errors, slow), (comparison,))
    return verdict.model_copy(update={"rollback": breach, "canary_requests": canary.requests})


def _check(stage: str, number: int, at: float, weight: int, breach: bool = False) -> CheckRecord:
    canary_requests = weight * 24
    canary = ArmNumbers(
        requests=canary_requests,
        errors=canary_requests * 3 // 10 if breach else number % 2,
        p50_ms=40 + number,
        p99_ms=400 if breach else 120 + 5 * number,
    )
    stable = ArmNumbers(requests=2400 - canary_requests, errors=2, p50_ms=38, p99_ms=110)
    return CheckRecord(
        deployment_id=RUN,
        run_id=RUN,
        service=SERVICE,
        stage=stage,
        number=number,
        at=_at(at),
        canary_weight=weight,
        status="breach" if breach else "healthy",
        rollback=breach,
        stable=stable,
        canary=canary,
        verdict=_verdict(canary, stable, 0.05 * 2**number, breach),
        drift=DRIFT if (stage, number) == ("pilot", 2) else None,
    )


def _event(kind: str, at: float, summary: str, **more: object) -> EventRecord:
    return EventRecord.model_validate(
        {
            "deployment_id": RUN,
            "run_id": RUN,
            "service": SERVICE,
            "kind": kind,
            "at": _at(at),
            "summary": summary,
            "stable_version": "v1.4.2",
            "canary_version": "v1.5.0",
            **more,
        }
    )


def rolled_back() -> DeploymentEvidence:
    """Canary 5% then pilot 25%: a pause by alice, drift, a lost check, a breach."""
    canary = [_check("canary", n, 30 * n + 5, 5) for n in range(1, 6)]
    # Pilot check 3 was lost while the store was down.
    pilot = [_check("pilot", n, 200 + 30 * n, 25) for n in (1, 2, 4, 5, 6)]
    breach = _check("pilot", 7, 200 + 30 * 7, 25, breach=True)
    checks = (*canary, *pilot, breach)
    events = (
        _event(
            "started",
            0,
            "deployment started: v1.4.2 → v1.5.0: canary 5% for 2m; pilot 25% for 5m; "
            "then 100%; checks every 30s.",
            canary_weight=0,
        ),
        _event("stage_advanced", 2, "v1.5.0: stage canary 5% for 2m", stage="canary", **_w(5)),
        _event("paused", 100, "paused: looking at a dashboard", stage="canary", by="alice"),
        _event("resumed", 140, f"resumed: fine {INJECTED}", stage="canary", by="alice"),
        _event("stage_advanced", 200, "v1.5.0: stage pilot 25% for 5m", stage="pilot", **_w(25)),
        _event(
            "breach",
            411,
            "unhealthy at pilot 25%: rolling back",
            stage="pilot",
            evidence=breach.verdict.lines(),
            **_w(25),
        ),
        _event("rollback_verified", 424, "100% to v1.4.2 on 2 of 2 routers", **_w(0)),
        _event(
            "rolled_back",
            425,
            "rolled back to 100% v1.4.2: canary unhealthy at pilot 25%",
            stage="pilot",
            **_w(0),
        ),
    )
    summary = _summary(
        "rolled_back",
        ended=425,
        reason=events[-1].summary,
        detected_at=breach.at,
        restored_at=_at(424),
    )
    gap = StoreGap(
        began_at=_at(285),
        ended_at=_at(295),
        checks=1,
        events=0,
        error=GAP_ERROR,
        deployments=(RUN,),
    )
    return DeploymentEvidence(summary=summary, checks=checks, events=events, gaps=(gap,))


def _summary(outcome: str, ended: float, **more: object) -> DeploymentSummary:
    """Built as the store's summary would be (the test does not depend on how)."""
    return DeploymentSummary.model_validate(
        {
            "deployment_id": RUN,
            "service": SERVICE,
            "stable_version": "v1.4.2",
            "canary_version": "v1.5.0",
            "started_at": T0,
            "ended_at": _at(ended),
            "outcome": outcome,
            "moved_traffic": True,
            **more,
        }
    )


def _w(weight: int) -> dict[str, object]:
    return {"canary_weight": weight}


def test_the_page_is_self_contained_and_escaped() -> None:
    evidence = rolled_back()
    link = "http://127.0.0.1:8233/namespaces/default/workflows/deploy-checkout"
    page = report_page(evidence, link)
    plotly_js = get_plotlyjs()
    assert page.count(plotly_js) == 1, "plotly.js is inlined once"
    # plotly.js holds URLs in strings (attributions); what the page itself loads is the rest.
    ours = page.replace(plotly_js, "")

    loads = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", ours, re.I)
    assert loads == [f"href='{link}"], "only the Web UI link may point at the network"
    assert "<link" not in ours.lower() and "@import" not in ours and "url(" not in ours
    assert ours.count("Plotly.newPlot") == len(CHARTS)
    for chart in CHARTS:
        assert f'id="{chart}"' in page
    assert SERVICE in page and "v1.5.0" in page and "rolled back" in page
    assert BREACH_LINE in evidence.breach.verdict.lines()  # type: ignore[union-attr]
    assert f"<li>{BREACH_LINE}</li>" in page
    assert "Detected at 10:06:50 UTC, restored at 10:07:04 UTC (14s)" in page
    assert "The store could not keep everything" in page
    assert GAP_ERROR in page and "stage pilot: checks 3 not kept" in page
    assert "Open in the Temporal Web UI" in page
    assert "alice: paused: looking at a dashboard" in page  # a control's hover text
    assert DRIFT in page
    assert INJECTED not in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page


def test_a_deployment_without_checks_still_renders() -> None:
    events = (
        _event("started", 0, "deployment started: v1.4.2 → v1.5.0: canary 5% for 2m."),
        _event("not_started", 3, "not started: the router refused the route", **_w(0)),
    )
    summary = _summary("not_started", ended=3, reason=events[-1].summary, moved_traffic=False)
    page = report_page(DeploymentEvidence(summary=summary, checks=(), events=events))

    assert "not started" in page and "No checks were kept" in page
    assert "Temporal Web UI" not in page and "Why it rolled back" not in page
    assert 'id="chart-errors"' not in page


@pytest.fixture
def chromium() -> Iterator[object]:
    """Headless Debian chromium; stopping Playwright ends its processes."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def test_the_page_renders_offline_in_chromium(chromium: object, tmp_path: Path) -> None:
    from playwright.sync_api import Browser, Route, expect

    assert isinstance(chromium, Browser)
    path = tmp_path / "report.html"
    path.write_text(report_page(rolled_back(), "http://127.0.0.1:8233/x"), encoding="utf-8")
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    blocked: list[str] = []
    errors: list[str] = []

    def offline(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    try:
        context.route("**/*", offline)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri(), wait_until="load")
        for chart in CHARTS:
            expect(page.locator(f"#{chart} .main-svg").first).to_be_visible(timeout=30_000)
            expect(page.locator(f"#{chart} .scatterlayer .trace").first).to_be_attached()
        expect(page.locator("#chart-weight .shapelayer path").first).to_be_attached()
        assert page.locator("#chart-evidence .annotation-text").filter(has_text="breach").count()
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SCREENSHOTS) / "report.png"), full_page=True)
    finally:
        context.close()
    assert errors == []
    assert blocked == []


def test_the_page_renders_under_the_policy_chatops_serves_it_with(chromium: object) -> None:
    """Served as `sluice chatops` serves it (its headers, Content-Security-Policy included),
    the page still draws every chart: the policy forbids nothing the page needs."""
    from playwright.sync_api import Browser, expect

    from frontends.chatops.reports import PAGE_HEADERS
    from tests.local_http import LocalServer, QuietHandler

    assert isinstance(chromium, Browser)
    body = report_page(rolled_back()).encode()

    class Page(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in PAGE_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    server = LocalServer(Page)
    context = chromium.new_context()
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"http://{server.address}/", wait_until="load")
        for chart in CHARTS:
            expect(page.locator(f"#{chart} .main-svg").first).to_be_visible(timeout=30_000)
    finally:
        context.close()
        server.close()
    assert errors == []  # a blocked script or style is reported as a console error
