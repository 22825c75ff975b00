"""WebhookRouterClient against a small real HTTP server that keeps the routing state."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from activities.routers import router_for
from activities.routers.webhook import WebhookRouterClient
from deploy.processes import free_port
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable
from sluicegate.spec import WebhookRouter
from tests.local_http import LocalServer, QuietHandler

PATH = "/routing/checkout"
START = {"canary_weight": 0, "stable_endpoints": ["10.0.0.1:8080"], "canary_endpoints": []}


class Platform(LocalServer):
    """A platform's routing endpoint: GET answers the stored state, POST replaces it."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = dict(START)
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, authorization
        self.posted: list[Any] = []
        self.fail: tuple[int, str] | None = None  # answer requests of `fail_on` with this
        self.fail_on = ("GET", "POST")
        self.forget_endpoints = False  # store only the weight of what is POSTed
        self.get_body: bytes | None = None  # answer GET with this instead of the state
        self.reverse = False  # answer each arm's endpoints in reverse order
        super().__init__(self._handler(), poll_interval=0.05)
        self.url = f"http://{self.address}{PATH}"

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.requests]

    def _handler(self) -> type[QuietHandler]:
        platform = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self._refused("GET"):
                    return
                state = dict(platform.state)
                if platform.reverse:
                    for arm in ("stable_endpoints", "canary_endpoints"):
                        state[arm] = list(reversed(state[arm]))
                body = platform.get_body or json.dumps(state).encode()
                self._answer(200, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                payload = self.rfile.read(length)
                if self._refused("POST"):
                    return
                data = json.loads(payload)
                platform.posted.append(data)
                if platform.forget_endpoints:
                    platform.state = {**platform.state, "canary_weight": data["canary_weight"]}
                else:
                    platform.state = data
                self._answer(200, b'{"ok": true}')

            def _refused(self, method: str) -> bool:
                platform.requests.append((method, self.path, self.headers.get("authorization")))
                if platform.fail is None or method not in platform.fail_on:
                    return False
                status, body = platform.fail
                self._answer(status, body.encode())
                return True

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def platform() -> Iterator[Platform]:
    server = Platform()
    yield server
    server.close()


def router(platform: Platform, **overrides: Any) -> WebhookRouterClient:
    return WebhookRouterClient(WebhookRouter(url=platform.url, **overrides))


DESIRED = RouterState(
    canary_weight=25, stable_endpoints=("10.0.0.1:8080",), canary_endpoints=("10.0.0.2:8080",)
)


async def test_read_state_is_what_the_platform_answers(platform: Platform):
    assert await router(platform).read_state() == RouterState.model_validate(START)
    assert platform.requests == [("GET", PATH, None)]


async def test_apply_posts_the_state_as_json_and_verifies_it(platform: Platform):
    assert await router(platform).apply(DESIRED) == DESIRED
    assert platform.posted == [
        {
            "canary_weight": 25,
            "stable_endpoints": ["10.0.0.1:8080"],
            "canary_endpoints": ["10.0.0.2:8080"],
        }
    ]
    assert platform.methods() == ["GET", "POST", "GET"]  # compare, set, read back
    assert await router(platform).read_state() == DESIRED


async def test_apply_twice_posts_once(platform: Platform):
    await router(platform).apply(DESIRED)
    assert await router(platform).apply(DESIRED) == DESIRED
    assert len(platform.posted) == 1


async def test_restore_puts_the_backup_back(platform: Platform):
    client = router(platform)
    backup = await client.read_state()
    await client.apply(DESIRED)
    assert await client.restore(backup) == backup
    assert await client.restore(backup) == backup
    assert platform.state == START
    assert len(platform.posted) == 2


async def test_a_platform_that_does_not_store_what_it_was_sent_fails_verification(
    platform: Platform,
):
    platform.forget_endpoints = True
    with pytest.raises(
        RouterUnavailable, match=re.escape("reads back 75% stable 10.0.0.1:8080, 25% canary -")
    ):
        await router(platform).apply(DESIRED)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, RouterMisconfigured),
        (401, RouterMisconfigured),
        (404, RouterMisconfigured),
        (429, RouterUnavailable),
        (500, RouterUnavailable),
        (503, RouterUnavailable),
    ],
)
async def test_http_errors_are_classified(platform: Platform, status: int, error: type[Exception]):
    platform.fail = (status, f'{{"error": "service checkout is frozen ({status})"}}')
    with pytest.raises(error, match=rf"answered {status}: .*checkout is frozen \({status}\)"):
        await router(platform).read_state()
    with pytest.raises(error, match=str(status)):
        await router(platform).apply(DESIRED)
    assert platform.posted == []


async def test_a_refused_post_is_misconfigured(platform: Platform):
    platform.fail, platform.fail_on = (
        (422, '{"error": "unknown endpoint 10.0.0.2:8080"}'),
        ("POST",),
    )
    with pytest.raises(RouterMisconfigured, match=re.escape("unknown endpoint 10.0.0.2:8080")):
        await router(platform).apply(DESIRED)
    assert platform.methods() == ["GET", "POST"]
    assert platform.state == START


async def test_an_unreachable_platform_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}{PATH}"
    client = WebhookRouterClient(WebhookRouter(url=url, timeout_seconds=2))
    with pytest.raises(RouterUnavailable, match=url):
        await client.read_state()
    with pytest.raises(RouterUnavailable, match=url):
        await client.apply(DESIRED)


async def test_an_answer_that_is_not_a_router_state_is_misconfigured(platform: Platform):
    platform.get_body = b'{"weight": 5}'
    with pytest.raises(RouterMisconfigured, match=r"did not answer a RouterState.*weight"):
        await router(platform).read_state()
    platform.get_body = b"<html>login</html>"
    with pytest.raises(RouterMisconfigured, match="login"):
        await router(platform).read_state()


async def test_the_token_is_sent_as_a_bearer(platform: Platform, monkeypatch):
    monkeypatch.setenv("CHECKOUT_ROUTING_TOKEN", "s3cret")
    await router(platform, token_env="CHECKOUT_ROUTING_TOKEN").apply(DESIRED)
    assert {auth for _, _, auth in platform.requests} == {"Bearer s3cret"}


async def test_a_missing_token_variable_is_refused_before_any_request(
    platform: Platform, monkeypatch
):
    monkeypatch.delenv("CHECKOUT_ROUTING_TOKEN", raising=False)
    client = router(platform, token_env="CHECKOUT_ROUTING_TOKEN")
    with pytest.raises(RouterMisconfigured, match="CHECKOUT_ROUTING_TOKEN"):
        await client.read_state()
    with pytest.raises(RouterMisconfigured, match="CHECKOUT_ROUTING_TOKEN"):
        await client.apply(DESIRED)
    assert platform.requests == []


def test_registry_builds_the_webhook_router():
    spec = WebhookRouter(url="https://deploy.example.com/routing/checkout")
    assert isinstance(router_for(spec), WebhookRouterClient)


FLEETS = RouterState(
    canary_weight=10,
    stable_endpoints=("10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.5:8080"),
    canary_endpoints=("10.0.0.2:8080", "10.0.0.4:8080", "10.0.0.6:8080"),
)


async def test_three_endpoints_per_version_go_out_and_come_back(platform: Platform):
    client = router(platform)
    backup = await client.read_state()
    assert await client.apply(FLEETS) == FLEETS
    assert platform.posted == [FLEETS.model_dump(mode="json")]
    assert platform.posted[0]["canary_endpoints"] == list(FLEETS.canary_endpoints)
    assert await client.read_state() == FLEETS

    shrunk = FLEETS.model_copy(update={"canary_endpoints": FLEETS.canary_endpoints[:1]})
    assert await client.apply(shrunk) == shrunk
    assert await client.apply(FLEETS) == FLEETS  # and grown back

    assert await client.restore(backup) == backup
    assert platform.state == START


async def test_endpoints_in_another_order_are_the_same_routing(platform: Platform):
    platform.reverse = True  # the platform keeps its own order
    client = router(platform)
    after = await client.apply(FLEETS)
    assert after.matches(FLEETS) and after.canary_endpoints == FLEETS.canary_endpoints[::-1]

    reordered = FLEETS.model_copy(update={"stable_endpoints": FLEETS.stable_endpoints[::-1]})
    assert (await client.apply(reordered)).matches(FLEETS)
    assert len(platform.posted) == 1  # the same routing: nothing posted the second time
