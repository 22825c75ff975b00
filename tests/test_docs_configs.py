"""Every fenced block on the router pages (and the Envoy stats page) is run, so they cannot rot.

A block is marked by the word after the language in its fence: ```yaml envoy.yaml,
```nginx nginx.conf, ```yaml spec (GitHub still renders it as YAML). Config blocks are
written to a temporary directory with the documented ports and paths replaced, as exact
strings, by free loopback ports and temporary paths; the real Envoy, HAProxy or nginx is
started on them in front of two small HTTP services, and the product's own router client
(and Envoy's stats source) steers and reads it. `spec` blocks are filled into a full spec,
validated with `parse_spec`, and the router and source they describe are the ones used.
A block that is not a config is listed in NOT_CONFIG with the reason. A block missing, or
a new one nobody runs, fails `test_every_block_is_marked_and_run`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from activities.metrics import SourceContext, metric_source_for
from activities.metrics.haproxy import HAProxyStatsSource
from activities.routers import router_for
from activities.routers.nginx import render_upstream
from deploy.envoy import start_envoy
from deploy.haproxy import INSTALL_HINT as HAPROXY_HINT
from deploy.haproxy import haproxy_binary, start_haproxy
from deploy.nginx import INSTALL_HINT as NGINX_HINT
from deploy.nginx import nginx_binary
from deploy.processes import free_port, port_open, start, wait_until
from sluicegate.contracts import RouterState
from sluicegate.errors import SpecError
from sluicegate.spec import DeploymentSpec, HAProxyStats, parse_spec
from tests.traffic import send_gets
from tests.waiting import sample_until

if TYPE_CHECKING:
    from tests.envoy_fixtures import Upstream

pytest_plugins = ["tests.haproxy_fixtures"]  # upstreams (stable, canary, other), socket_dir

DOCS = Path(__file__).resolve().parent.parent / "docs"
ENVOY_PAGE = "routers/envoy.md"
HAPROXY_PAGE = "routers/haproxy.md"
NGINX_PAGE = "routers/nginx.md"
ENVOY_STATS_PAGE = "metrics/envoy.md"

# Every block of every page, by name, and how many there are; each is run below unless
# NOT_CONFIG says why not.
EXPECTED_BLOCKS = {
    ENVOY_PAGE: {"spec": 2, "envoy.yaml": 1, "stable.yaml": 1, "canary.yaml": 1, "start-envoy": 1},
    HAPROXY_PAGE: {"spec": 1, "haproxy.cfg": 1},
    NGINX_PAGE: {"spec": 1, "nginx.conf": 1, "checkout.upstream": 1, "upstream-at-5-percent": 1},
    ENVOY_STATS_PAGE: {"spec": 1},
}
NOT_CONFIG = {
    (ENVOY_PAGE, "start-envoy"): (
        "a shell command; test_envoy_page starts Envoy with deploy.envoy.start_envoy, which "
        "runs the same `envoy -c envoy.yaml --disable-hot-restart` (plus --base-id and a log "
        "level); test_envoy_start_command checks the page still says so"
    ),
}

# The addresses the pages use for the two versions.
DOC_STABLE = "10.20.1.14:8080"
DOC_CANARY = "10.20.1.27:8080"
FENCE = re.compile(r"^\s*```(.*)$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    name: str
    text: str

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line} (```{self.language} {self.name})"


def read_blocks(page: str) -> list[Block]:
    """The fenced blocks of `docs/<page>`, in order."""
    blocks: list[Block] = []
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate((DOCS / page).read_text().splitlines(), 1):
        fence = FENCE.match(line)
        if opened is None:
            if fence:
                opened, body = (number, fence.group(1).strip()), []
        elif fence and not fence.group(1).strip():
            language, _, name = opened[1].partition(" ")
            blocks.append(Block(page, opened[0], language, name.strip(), "\n".join(body) + "\n"))
            opened = None
        else:
            body.append(line)
    assert opened is None, f"docs/{page}:{opened[0]}: a fenced block is never closed"
    return blocks


def block(page: str, name: str) -> Block:
    """The one block named `name` on `page`; fails clearly if it is missing or repeated."""
    found = [b for b in read_blocks(page) if b.name == name]
    assert len(found) == 1, (
        f"docs/{page} has {len(found)} blocks named {name!r}; tests/test_docs_configs.py "
        "runs exactly one (mark it ```<language> " + name + ")"
    )
    return found[0]


def spec_blocks(page: str) -> list[Block]:
    return [b for b in read_blocks(page) if b.name == "spec"]


def substitute(text: str, where: str, replacements: dict[str, str]) -> str:
    """Replace documented strings (each must be there) by their local stand-ins."""
    for documented, local in replacements.items():
        assert documented in text, (
            f"{where} no longer contains {documented!r}: update the substitutions in "
            "tests/test_docs_configs.py to what the page documents now"
        )
        text = text.replace(documented, local)
    return text


def full_spec(
    snippet: Block, replacements: dict[str, str], stable: str, canary: str
) -> tuple[DeploymentSpec, set[str]]:
    """The snippet, its documented strings replaced where present, filled into a full spec;
    with the snippet's own top-level keys."""
    text = snippet.text
    for documented, local in replacements.items():
        text = text.replace(documented, local)
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{snippet.where}: a spec block must be a YAML mapping"
    base: dict[str, Any] = {
        "service": "checkout",
        "stable": {"version": "v1.41.3", "address": stable},
        "canary": {"version": "v1.42.0", "address": canary},
        "router": {"type": "webhook", "url": "http://127.0.0.1:9/sluicegate"},
        "analysis": {
            "source": {
                "type": "http_probe",
                "stable_url": f"http://{stable}/",
                "canary_url": f"http://{canary}/",
            }
        },
    }
    merged = {**base, **data, "analysis": {**base["analysis"], **data.get("analysis", {})}}
    try:
        return parse_spec(merged), set(data)
    except SpecError as err:
        pytest.fail(f"{snippet.where} is not a valid spec part: {err}")


def at_rest(stable: str) -> RouterState:
    """What the first files on every page hold: 0% canary, stable's address in both arms."""
    return RouterState(canary_weight=0, stable_endpoints=(stable,), canary_endpoints=(stable,))


def half(spec: DeploymentSpec) -> RouterState:
    return RouterState(
        canary_weight=50,
        stable_endpoints=(spec.stable.address,),
        canary_endpoints=(spec.canary.address,),
    )


async def check_router(spec: DeploymentSpec, url: str, where: str) -> None:
    """The router the spec names starts at rest, splits 50%, and goes back to rest."""
    router = router_for(spec.router)
    rest = at_rest(spec.stable.address)
    # 0% canary with stable.address in the stable arm: what a deployment requires to start.
    assert await router.read_state() == rest, where
    assert await send_gets(url, 20) == {"200 stable": 20}, where

    assert await router.apply(half(spec)) == half(spec), where
    answers = await send_gets(url, 100)
    assert answers["200 stable"] > 0, (where, answers)
    assert answers["200 canary"] > 0, (where, answers)
    assert answers["200 stable"] + answers["200 canary"] == 100, (where, answers)

    assert await router.apply(rest) == rest, where
    assert await send_gets(url, 20) == {"200 stable": 20}, where


@pytest.mark.parametrize("page", sorted(EXPECTED_BLOCKS))
def test_every_block_is_marked_and_run(page: str):
    blocks = read_blocks(page)
    unmarked = [f"docs/{page}:{b.line}: ```{b.language}" for b in blocks if not b.name]
    assert not unmarked, (
        "fenced blocks without a name after the language:\n"
        + "\n".join(unmarked)
        + "\nmark each (```yaml spec, ```nginx nginx.conf, ...) and run it in "
        "tests/test_docs_configs.py, or list it in NOT_CONFIG with the reason"
    )
    found = Counter(b.name for b in blocks)
    assert found == Counter(EXPECTED_BLOCKS[page]), (
        f"docs/{page} has the blocks {dict(found)}, tests/test_docs_configs.py runs "
        f"{EXPECTED_BLOCKS[page]}: a new block needs a test there (or a NOT_CONFIG entry "
        "with the reason), a removed one its test removed"
    )
    for listed_page, name in NOT_CONFIG:
        assert name in EXPECTED_BLOCKS[listed_page], (listed_page, name)


@pytest.mark.parametrize("page", sorted(EXPECTED_BLOCKS))
def test_spec_blocks_are_valid_as_written(page: str):
    """Each spec block, as the page shows it, is part of a spec parse_spec accepts."""
    for snippet in spec_blocks(page):
        spec, keys = full_spec(snippet, {}, DOC_STABLE, DOC_CANARY)
        assert keys & {"router", "analysis"}, f"{snippet.where}: no router or analysis"
        if "router" in keys:
            assert spec.router.type == page.split("/")[-1].removesuffix(".md"), snippet.where
        if "analysis" in keys:
            assert spec.analysis.source.type == "envoy", snippet.where


def test_envoy_start_command():
    command = block(ENVOY_PAGE, "start-envoy").text.split()
    assert command == ["envoy", "-c", "envoy.yaml", "--disable-hot-restart"]


async def test_envoy_page(tmp_path: Path, upstreams: dict[str, Upstream]):
    stable, canary = upstreams["stable"].address, upstreams["canary"].address
    listen_port, admin_port = free_port(), free_port()
    endpoints = tmp_path / "endpoints"
    endpoints.mkdir()
    bootstrap = block(ENVOY_PAGE, "envoy.yaml")
    (tmp_path / "envoy.yaml").write_text(
        substitute(
            bootstrap.text,
            bootstrap.where,
            {
                "{address: 127.0.0.1, port_value: 9901}": (
                    f"{{address: 127.0.0.1, port_value: {admin_port}}}"
                ),
                "{address: 0.0.0.0, port_value: 10000}": (
                    f"{{address: 127.0.0.1, port_value: {listen_port}}}"
                ),
                "/srv/envoy/endpoints": str(endpoints),
            },
        )
    )
    stable_host, stable_port = stable.rsplit(":", 1)
    first_files = {}
    for name in ("stable.yaml", "canary.yaml"):
        eds = block(ENVOY_PAGE, name)
        first_files[name] = substitute(
            eds.text,
            eds.where,
            {
                "{address: 10.20.1.14, port_value: 8080}": (
                    f"{{address: {stable_host}, port_value: {stable_port}}}"
                )
            },
        )
        (endpoints / name).write_text(first_files[name])
    admin_url = f"http://127.0.0.1:{admin_port}"
    replacements = {
        "http://127.0.0.1:9901": admin_url,
        "/srv/envoy/endpoints": str(endpoints),
        DOC_STABLE: stable,
        DOC_CANARY: canary,
    }
    envoy = start_envoy(tmp_path, listen_port, admin_port, tmp_path / "logs")
    try:
        snippets = spec_blocks(ENVOY_PAGE) + spec_blocks(ENVOY_STATS_PAGE)
        assert snippets, "no spec blocks on the Envoy pages"
        for snippet in snippets:
            spec, keys = full_spec(snippet, replacements, stable, canary)
            if "router" in keys:
                assert spec.router.admin_url == admin_url, snippet.where
                assert spec.router.endpoints_dir == str(endpoints), snippet.where
                await check_router(spec, f"http://127.0.0.1:{listen_port}/", snippet.where)
                # Going back to rest, Sluicegate rewrote canary.yaml: in the page's format.
                written = yaml.safe_load((endpoints / "canary.yaml").read_text())
                shown = yaml.safe_load(first_files["canary.yaml"])
                assert {**written, "version_info": "-"} == {**shown, "version_info": "-"}
            if "analysis" in keys:
                # By now check_router has sent traffic to both clusters.
                assert spec.analysis.source.admin_url == admin_url, snippet.where
                context = SourceContext(
                    spec.service, spec.stable.version, spec.canary.version, spec.analysis.interval
                )
                source = metric_source_for(spec.analysis.source, context)
                sample = await sample_until(
                    source,
                    lambda s: all(
                        arm is not None and arm.requests > 0 and arm.latency_buckets
                        for arm in (s.stable, s.canary)
                    ),
                )
                for arm in (sample.stable, sample.canary):
                    assert arm is not None
                    bounds = [bound for bound, _ in arm.latency_buckets]
                    assert 200.0 in bounds, (snippet.where, bounds)
    finally:
        envoy.stop()


async def test_haproxy_page(tmp_path: Path, socket_dir: Path, upstreams: dict[str, Upstream]):
    if haproxy_binary() is None:
        pytest.skip(f"haproxy is not installed: {HAPROXY_HINT}")
    stable, canary = upstreams["stable"].address, upstreams["canary"].address
    listen_port, metrics_port, runtime_port = free_port(), free_port(), free_port()
    socket = socket_dir / "admin.sock"
    config = block(HAPROXY_PAGE, "haproxy.cfg")
    config_file = tmp_path / "haproxy.cfg"
    config_file.write_text(
        substitute(
            config.text,
            config.where,
            {
                "/run/haproxy/admin.sock": str(socket),
                "ipv4@127.0.0.1:9999": f"ipv4@127.0.0.1:{runtime_port}",
                "bind :80\n": f"bind 127.0.0.1:{listen_port}\n",
                "bind 127.0.0.1:8404\n": f"bind 127.0.0.1:{metrics_port}\n",
                DOC_STABLE: stable,
            },
        )
    )
    replacements = {
        "/run/haproxy/admin.sock": str(socket),
        "127.0.0.1:9999": f"127.0.0.1:{runtime_port}",
        DOC_STABLE: stable,
        DOC_CANARY: canary,
    }
    haproxy = start_haproxy(config_file, listen_port, metrics_port, socket, tmp_path / "logs")
    try:
        snippets = spec_blocks(HAPROXY_PAGE)
        for snippet in snippets:
            spec, _ = full_spec(snippet, replacements, stable, canary)
            assert spec.router.runtime_api == str(socket), snippet.where
            await check_router(spec, f"http://127.0.0.1:{listen_port}/", snippet.where)
            # The TCP stats socket the config and the spec's comment offer works the same.
            tcp = spec.router.model_copy(update={"runtime_api": f"127.0.0.1:{runtime_port}"})
            assert await router_for(tcp).read_state() == at_rest(stable), snippet.where
            # The metrics frontend serves the haproxy metric source.
            stats = HAProxyStats(
                metrics_url=f"http://127.0.0.1:{metrics_port}/metrics", backend=spec.router.backend
            )
            sample = await sample_until(
                HAProxyStatsSource(stats),
                lambda s: s.canary is not None and s.canary.requests > 0,
            )
            assert sample.stable is not None and sample.stable.requests > 0
    finally:
        haproxy.stop()


def test_nginx_upstream_blocks_are_what_sluicegate_writes():
    first = block(NGINX_PAGE, "checkout.upstream")
    assert first.text == render_upstream("checkout", at_rest(DOC_STABLE)), first.where
    five = block(NGINX_PAGE, "upstream-at-5-percent")
    state = RouterState(
        canary_weight=5, stable_endpoints=(DOC_STABLE,), canary_endpoints=(DOC_CANARY,)
    )
    assert five.text == render_upstream("checkout", state), five.where


async def test_nginx_page(tmp_path: Path, upstreams: dict[str, Upstream]):
    binary = nginx_binary()
    if binary is None:
        pytest.skip(f"nginx is not installed: {NGINX_HINT}")
    stable, canary = upstreams["stable"].address, upstreams["canary"].address
    listen_port = free_port()
    main_config, upstream_file, pid_file = (
        tmp_path / "nginx.conf",
        tmp_path / "checkout.upstream",
        tmp_path / "nginx.pid",
    )
    # Not documented paths: nginx's compiled-in temp directories (/var/lib/nginx/...) are
    # outside the test's directory, so the test points them into it.
    temp_paths = ""
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "temp" / kind).mkdir(parents=True)
        temp_paths += f"\n    {kind}_temp_path {tmp_path / 'temp' / kind};"
    config = block(NGINX_PAGE, "nginx.conf")
    main_config.write_text(
        substitute(
            config.text,
            config.where,
            {
                "/run/nginx.pid": str(pid_file),
                "/var/log/nginx/error.log": str(tmp_path / "error.log"),
                "/var/log/nginx/access.log": str(tmp_path / "access.log"),
                "/etc/nginx/sluicegate/checkout.upstream": str(upstream_file),
                "listen 80;": f"listen 127.0.0.1:{listen_port};",
                "http {\n": "http {" + temp_paths + "\n",
            },
        )
    )
    first = block(NGINX_PAGE, "checkout.upstream")
    upstream_file.write_text(substitute(first.text, first.where, {DOC_STABLE: stable}))
    replacements = {
        "/etc/nginx/sluicegate/checkout.upstream": str(upstream_file),
        "/etc/nginx/nginx.conf": str(main_config),
    }
    # In the foreground (the page's config lets nginx daemonize, as a service manager
    # expects), so that this test owns the master and stops it by PID.
    argv = [binary, "-e", "stderr", "-g", "daemon off;", "-c", str(main_config)]
    nginx = start(f"nginx-docs-{listen_port}", argv, tmp_path / "logs")
    try:
        wait_until(port_open(listen_port), nginx, timeout=10)
        wait_until(
            lambda: pid_file.exists() and pid_file.read_text().strip() == str(nginx.pid),
            nginx,
            timeout=5,
        )
        for snippet in spec_blocks(NGINX_PAGE):
            spec, _ = full_spec(snippet, replacements, stable, canary)
            assert spec.router.upstream_file == str(upstream_file), snippet.where
            assert spec.router.main_config == str(main_config), snippet.where
            await check_router(spec, f"http://127.0.0.1:{listen_port}/", snippet.where)
            # 5% is written as the page shows it.
            five = RouterState(
                canary_weight=5, stable_endpoints=(stable,), canary_endpoints=(canary,)
            )
            assert await router_for(spec.router).apply(five) == five
            shown = block(NGINX_PAGE, "upstream-at-5-percent")
            expected = substitute(shown.text, shown.where, {DOC_STABLE: stable, DOC_CANARY: canary})
            assert upstream_file.read_text() == expected
            assert await router_for(spec.router).apply(at_rest(stable)) == at_rest(stable)
    finally:
        nginx.stop()
