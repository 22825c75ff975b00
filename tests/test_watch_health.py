"""The health watcher as one activity, against real Envoy: drift repair and crash resume."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from activities.deployment import watch_health
from activities.routers import router_for
from sluicegate.analysis.verdict import Verdict
from sluicegate.contracts import CheckReport, RouterState, WatchHealthInput
from sluicegate.spec import AnalysisSpec, EnvoyRouter, EnvoyStats

if TYPE_CHECKING:
    from tests.envoy_fixtures import EnvoyStack, Upstream

pytest_plugins = ["tests.envoy_fixtures"]


async def steady_load(url: str, stop: asyncio.Event) -> None:
    """Requests through Envoy, one after another, until `stop` is set."""
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            await client.get(url)


def watcher_environment() -> ActivityEnvironment:
    """An activity environment converting payloads as the worker does (pydantic)."""
    env = ActivityEnvironment()
    env.payload_converter = pydantic_data_converter.payload_converter
    return env


def checks_in(details: Sequence[object]) -> list[CheckReport]:
    """The checks a watcher heartbeated: each the payload of one CheckReport."""
    converter = pydantic_data_converter.payload_converter
    return [
        converter.from_payload(detail.payload, CheckReport)
        for detail in details
        if isinstance(detail, RawValue)
    ]


async def test_a_retried_watcher_keeps_its_failed_check_count(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
) -> None:
    upstreams["canary"].status = 500
    request = WatchHealthInput(
        service="checkout",
        stage="pilot",
        router=EnvoyRouter(admin_url=envoy.admin_url, endpoints_dir=str(envoy.endpoints_dir)),
        expected=RouterState(
            canary_weight=50,
            stable_endpoints=(upstreams["stable"].address,),
            canary_endpoints=(upstreams["canary"].address,),
        ),
        analysis=AnalysisSpec(
            source=EnvoyStats(admin_url=envoy.admin_url),
            interval=timedelta(milliseconds=300),
            min_requests=3,
            failed_checks_tolerated=1,
        ),
    )
    # The previous attempt, on a worker that died, had used up the one tolerated failure.
    before_crash = CheckReport(
        stage="pilot",
        at=datetime.now(UTC),
        number=7,
        verdict=Verdict(status="breach", results=()),
        failed_checks=1,
    )
    await router_for(request.router).apply(request.expected)
    env = watcher_environment()
    env.info = dataclasses.replace(
        env.info, heartbeat_details=[before_crash.model_dump(mode="json")]
    )
    heartbeats: list[object] = []
    env.on_heartbeat = lambda *details: heartbeats.extend(checks_in(details))
    stop = asyncio.Event()
    load = asyncio.create_task(steady_load(envoy.url, stop))
    try:
        result = await env.run(watch_health, request)
    finally:
        stop.set()
        await load
    assert result.status == "breach"
    assert result.last is not None
    assert (result.checks, result.failed_checks) == (result.last.number, 2)
    assert result.checks > 7  # numbering went on from the last heartbeat
    heartbeated_breaches = [
        r
        for r in heartbeats
        if isinstance(r, CheckReport) and r.number > 7 and r.verdict.status == "breach"
    ]
    assert heartbeated_breaches == []  # the tolerance was used before the crash: the first
    assert result.last.verdict.status == "breach"  # new breach ends the watch
    breached = {m.metric for m in result.last.verdict.breaches}
    # Either error rule may prove it first, by how the failing requests fell into checks.
    assert breached & {"error_rate", "availability"}, breached


async def failing_pilot(envoy: EnvoyStack, upstreams: dict[str, Upstream]) -> WatchHealthInput:
    """A watch of a canary that fails every request at 50%, where the workflow's shift left
    Envoy: it ends at its first breach."""
    upstreams["canary"].status = 500
    request = WatchHealthInput(
        service="checkout",
        stage="pilot",
        router=EnvoyRouter(admin_url=envoy.admin_url, endpoints_dir=str(envoy.endpoints_dir)),
        expected=RouterState(
            canary_weight=50,
            stable_endpoints=(upstreams["stable"].address,),
            canary_endpoints=(upstreams["canary"].address,),
        ),
        analysis=AnalysisSpec(
            source=EnvoyStats(admin_url=envoy.admin_url),
            interval=timedelta(milliseconds=300),
            min_requests=3,
        ),
    )
    await router_for(request.router).apply(request.expected)
    return request


@pytest.mark.parametrize("resumed", ["from its heartbeat", "without one", "not at all"])
async def test_a_resumed_watcher_counts_the_time_no_watcher_was_running(
    envoy: EnvoyStack, upstreams: dict[str, Upstream], resumed: str
) -> None:
    request = await failing_pilot(envoy, upstreams)
    lost_at = datetime.now(UTC) - timedelta(minutes=5)
    env = watcher_environment()
    if resumed == "from its heartbeat":
        # The attempt whose worker died checked last 5 minutes ago; an earlier loss in this
        # stage had already left it unwatched for 30 s.
        before_crash = CheckReport(
            stage="pilot",
            at=lost_at,
            number=7,
            verdict=Verdict(status="healthy", results=()),
            unwatched=timedelta(seconds=30),
        )
        details = [before_crash.model_dump(mode="json")]
        env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=details)
    elif resumed == "without one":  # its worker died before its first check
        env.info = dataclasses.replace(env.info, attempt=2, scheduled_time=lost_at)
    heartbeats: list[object] = []
    env.on_heartbeat = lambda *details: heartbeats.extend(checks_in(details))
    stop = asyncio.Event()
    load = asyncio.create_task(steady_load(envoy.url, stop))
    try:
        result = await env.run(watch_health, request)
    finally:
        stop.set()
        await load
    assert result.status == "breach" and result.last is not None
    # The checks this attempt made (it heartbeats the previous attempt's until its first),
    # and the one it ended on.
    checks = [r for r in heartbeats if isinstance(r, CheckReport) and r.at > lost_at]
    checks.append(result.last)
    first = min(checks, key=lambda r: r.number)
    interval = request.analysis.interval
    if resumed == "from its heartbeat":
        expected = timedelta(seconds=30) + (first.at - lost_at - interval)
        assert first.number == 8
    elif resumed == "without one":
        expected = first.at - lost_at - interval
        assert first.number == 1
    else:
        expected = timedelta(0)  # a first attempt was not resumed
    assert first.unwatched == expected
    assert expected == timedelta(0) or expected > timedelta(minutes=4)
    # Counted once, at the first check; carried by every later one (and by a retry's).
    assert {r.unwatched for r in checks} == {expected}
    assert result.last.unwatched == expected


async def test_a_watcher_hands_over_on_a_check_and_the_next_carries_on_from_it(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
) -> None:
    """At `hand_over_at` the watcher ends on a check (the workflow continues as new); the
    next run's watcher, given that check, numbers and judges on from it."""
    request = await failing_pilot(envoy, upstreams)
    upstreams["canary"].status = 200
    hand_over_at = datetime.now(UTC) + timedelta(seconds=1)
    first_run = request.model_copy(update={"hand_over_at": hand_over_at})
    stop = asyncio.Event()
    load = asyncio.create_task(steady_load(envoy.url, stop))
    try:
        handed = await watcher_environment().run(watch_health, first_run)
        assert handed.status == "handed_over" and handed.last is not None
        assert handed.last.at >= hand_over_at
        assert handed.last.judge is not None
        next_run = request.model_copy(
            update={"resume_from": handed.last, "hand_over_at": datetime.now(UTC)}
        )
        carried = await watcher_environment().run(watch_health, next_run)
    finally:
        stop.set()
        await load
    assert carried.status == "handed_over" and carried.last is not None
    assert carried.last.number == handed.last.number + 1  # one check on from it
    assert carried.checks == handed.checks + 1
