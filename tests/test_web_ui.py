"""The Temporal Web UI as a control surface, in a real browser: start a deployment with the
UI's *Start Workflow* form and abort it with *Send a Signal*, then check Envoy.

Headless Debian `chromium` (`apt-get install -y chromium`; `make test` installs it as root),
driven by Playwright's Python package through `executable_path`: no `playwright install`.
With SLUICEGATE_SCREENSHOTS=docs/img the run saves the two filled-in forms there (the
pictures in docs/OPERATIONS.md); without it, nothing is written.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from deploy.stack import LocalStack, Site
from sluicegate.settings import Settings
from tests.stack_fixtures import sluice_worker
from tests.waiting import eventually
from workers.client import connect
from workflows.canary import CanaryDeployment

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is missing: pip install -e '.[dev]'"
)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = os.environ.get("SLUICEGATE_SCREENSHOTS")  # e.g. docs/img; unset: none taken
# A loaded two-core machine renders the UI slowly: every browser step may take this long.
UI_TIMEOUT_MS = 90_000

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: apt-get install -y chromium (make test does, as root)",
    ),
]


@pytest.fixture(scope="module")
def web_ui(stack: LocalStack) -> tuple[str, str]:
    """A dev server of this module's own, for its Web UI port: its address and the UI's URL.

    The stack stops it by PID with everything else it started."""
    address, ui_port = stack.temporal()
    return address, f"http://127.0.0.1:{ui_port}"


@pytest.fixture(scope="module")
async def temporal(web_ui: tuple[str, str], stack: LocalStack) -> AsyncIterator[tuple[str, Client]]:
    """`sluice worker` on a task queue of its own (stopped by PID) and a client."""
    address, _ = web_ui
    task_queue = f"web-ui-{uuid.uuid4().hex[:8]}"
    async with sluice_worker(stack, address, task_queue):
        yield task_queue, await connect(Settings(temporal_address=address))


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[playwright_api.Browser]:
    """Headless Debian chromium; closing it (and Playwright) ends its processes."""
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: playwright_api.Browser) -> AsyncIterator[playwright_api.Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    playwright_api.expect.set_options(timeout=UI_TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def screenshot(page: playwright_api.Page, name: str, height: int = 900) -> None:
    """Save the page as SLUICEGATE_SCREENSHOTS/name, only when that switch is set; `height`:
    a taller window for the shot, as the UI scrolls its main pane, not the page."""
    if not SCREENSHOTS:
        return
    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    assert size is not None
    await page.set_viewport_size({"width": size["width"], "height": height})
    try:
        await page.screenshot(path=str(Path(SCREENSHOTS) / name))
    finally:
        await page.set_viewport_size(size)


async def test_start_and_abort_a_deployment_from_the_web_ui(
    web_ui: tuple[str, str],
    temporal: tuple[str, Client],
    site: Site,
    page: playwright_api.Page,
) -> None:
    _, ui = web_ui
    task_queue, client = temporal
    expect = playwright_api.expect
    # A long first stage: still running, at 20%, when the abort comes.
    stages = [{"name": "canary", "weight": 20, "bake": "PT30M"}]
    spec = site.spec(service="checkout", stages=stages)  # workflow id deploy-checkout

    # Start Workflow: Workflow ID, Task Queue, Workflow Type, the spec JSON as json/plain.
    await page.goto(f"{ui}/namespaces/default/workflows")
    await page.get_by_role("link", name="Start Workflow").click()
    await page.get_by_label("Workflow ID").fill(spec.workflow_id)
    await page.get_by_label("Task Queue").fill(task_queue)
    await page.get_by_label("Workflow Type").fill("CanaryDeployment")
    await page.get_by_role("textbox", name="Data").fill(spec.model_dump_json(indent=2))
    await page.get_by_role("textbox", name="Data").press("Control+Home")  # show its top
    await expect(page.get_by_role("radio", name="json/plain")).to_be_checked()
    await screenshot(page, "web-ui-start-workflow.png", height=1200)
    await page.get_by_role("button", name="Start Workflow").click()
    # The toast links to the new workflow.
    await expect(page.get_by_role("link", name="Workflow started successfully")).to_be_visible()

    async def shifted() -> bool:
        return (await site.router_state()).canary_weight == 20

    await eventually(shifted, "Envoy sends the stage's 20% to the canary", attempts=2400)

    # Send a Signal: from the workflow's page, More Actions → Send a Signal.
    await page.goto(f"{ui}/namespaces/default/workflows/{spec.workflow_id}")
    await page.get_by_role("button", name="More Actions").click()
    await page.get_by_role("menuitem", name="Send a Signal").click()
    dialog = page.get_by_role("dialog").filter(
        has=page.get_by_role("heading", name="Send a Signal")
    )
    # With a worker answering the UI's metadata query, the signal name is a list of the
    # workflow's signal handlers (without one, a text field). Test ids, not the label: the
    # UI renders this dialog twice with the same element ids, so the label finds the copy
    # that is hidden.
    await dialog.get_by_test_id("signal-select-button").click()
    await dialog.get_by_role("option", name="abort", exact=True).click()
    await dialog.get_by_role("textbox", name="Data").fill(
        '{"by": "web-ui", "reason": "from the browser"}'
    )
    await expect(dialog.get_by_role("radio", name="json/plain")).to_be_checked()
    await screenshot(page, "web-ui-send-signal.png")
    await dialog.get_by_role("button", name="Submit").click()

    handle = client.get_workflow_handle_for(CanaryDeployment.run, spec.workflow_id)
    result = await asyncio.wait_for(handle.result(), timeout=300)
    assert result.outcome == "rolled_back", result.reason
    assert result.reason == "aborted by web-ui: from the browser"
    assert [(c.action, c.by, c.reason) for c in result.controls] == [
        ("abort", "web-ui", "from the browser")
    ]
    # What the UI sent: the spec and the control as single json/plain payloads.
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    aborts = [
        e.workflow_execution_signaled_event_attributes
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
        and e.workflow_execution_signaled_event_attributes.signal_name == "abort"
    ]
    assert [p.metadata["encoding"] for p in started.input.payloads] == [b"json/plain"]
    assert [[p.metadata["encoding"] for p in a.input.payloads] for a in aborts] == [[b"json/plain"]]
    # The dev server's UI sends no identity of its own (docs/OPERATIONS.md, From the Web UI).
    assert (started.identity, aborts[0].identity) == ("", "")
    state = await site.router_state()
    assert state.canary_weight == 0
    assert state.stable_endpoints == (site.stable.address,)
