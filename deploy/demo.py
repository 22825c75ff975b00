"""`make demo`: a healthy canary promoted to 100%, then a faulty one rolled back by itself.

Everything runs on loopback and is started and stopped here: the Temporal dev server with
its Web UI, Envoy, three builds of a sample service, a steady load and a Sluicegate worker.
With `--once` it exits after the two deployments (non-zero if either ended wrongly);
otherwise it starts a third deployment that waits at a manual gate, prints the one-line
commands that promote or abort it, and keeps the stack up for browsing until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import socket
import sys
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from activities.routers import router_for
from deploy.fronts import FRONTS, Front
from deploy.haproxy import haproxy_binary
from deploy.nginx import nginx_binary
from deploy.processes import free_port, venv_binary
from deploy.stack import LocalStack, Service, canary_spec
from frontends.client.deployments import follow, start_deployment
from frontends.client.lines import event_line
from sluicegate.contracts import DeploymentResult
from sluicegate.settings import Settings
from sluicegate.spec import DeploymentSpec
from workers.client import connect

DEFAULT_STATE_DIR = Path(".state") / "demo"  # under the directory it is started in
TASK_QUEUE = "sluicegate-demo"
SERVICE = "shop"
LOAD_RPS = 300
GATED_STAGES = [{"name": "review", "weight": 10, "bake": "PT5S", "manual_gate": True}]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sluicegate-demo", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--once", action="store_true", help="run the two deployments, then exit (0 if both right)"
    )
    parser.add_argument(
        "--ui-port", type=int, default=8233, help="Web UI port (a free one if taken; default 8233)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where Temporal's SQLite file, backups and logs go; emptied at start "
        f"(default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--router",
        choices=FRONTS,
        default="envoy",
        help="the data plane: envoy (default), haproxy (metrics via Prometheus when "
        "installed) or nginx (health from HTTP probes)",
    )
    return parser.parse_args(argv)


def missing_binary(router: str) -> str | None:
    """Why `router` cannot run here, or None."""
    found = {"envoy": "envoy", "haproxy": haproxy_binary(), "nginx": nginx_binary()}
    if found[router] is not None:
        return None
    package = "nginx-light" if router == "nginx" else router
    return (
        f"{router} is not installed: apt-get install -y {package} (as root), or use --router envoy"
    )


async def run(args: argparse.Namespace) -> int:
    if problem := missing_binary(args.router):
        say(f"error: {problem}")
        return 2
    shutil.rmtree(args.state_dir, ignore_errors=True)  # each demo starts from an empty history
    stack = LocalStack(args.state_dir)
    try:
        address, ui_port = stack.temporal(ui_port=_port_or_free(args.ui_port))
        ui = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows"
        v1, v2 = stack.service("v1"), stack.service("v2")
        v3 = stack.service("v3", error_rate=0.05, delay_ms=250)
        front = stack.front(args.router, SERVICE, v1)
        stack.load(front.url, LOAD_RPS)
        stack.worker(address, TASK_QUEUE)
        client = await connect(Settings(temporal_address=address))
        say(f"Stack up. Temporal Web UI: {ui}   (logs in {stack.log_dir})")
        name = {"envoy": "Envoy", "haproxy": "HAProxy", "nginx": "nginx"}[front.kind]
        say(f"{name} on {front.url} takes {LOAD_RPS} requests/s; v1 serves all of it.")

        backups = args.state_dir / "backups"
        healthy = await deploy(client, _spec(front, v1, v2, backups), ui)
        faulty = await deploy(client, _spec(front, v2, v3, backups), ui)
        at_rest = await router_for(_spec(front, v2, v3, backups).router).read_state()
        ok = (
            healthy.outcome == "promoted"
            and faulty.outcome == "rolled_back"
            and at_rest.canary_weight == 0
            and at_rest.stable_endpoints == (v2.address,)
        )
        say(f"{name} now: {at_rest.describe()}")
        say("Demo " + ("PASSED: v2 promoted, v3 rolled back." if ok else "FAILED: see above."))
        if args.once:
            return 0 if ok else 1
        gated = _spec(front, v2, stack.service("v4"), backups, stages=GATED_STAGES)
        await _interactive(client, gated, address, ui)
        return 0 if ok else 1
    finally:
        stack.close()


async def deploy(client: Client, spec: DeploymentSpec, ui: str) -> DeploymentResult:
    """Start one deployment, print each transition and live check, return its result."""
    handle = await start_deployment(client, spec, TASK_QUEUE)
    say(f"\n=== Deploying {spec.canary.version} over {spec.stable.version}: {ui}/{handle.id}")
    async for event in follow(client, handle.id):
        say(event_line(event))
    result = await handle.result()
    say(f"--> {result.outcome.upper()}: {result.reason}")
    if result.outcome == "rolled_back" and result.evidence is not None:
        verdict = result.evidence.verdict
        for metric in (*verdict.results, *verdict.comparisons):
            say(f"    {metric.status:>12}  {metric.describe()}")
    return result


async def _interactive(client: Client, spec: DeploymentSpec, address: str, ui: str) -> None:
    """Leave a deployment waiting at a manual gate for the user to promote or abort."""
    handle = await start_deployment(client, spec, TASK_QUEUE)
    sluice = f"{venv_binary('sluice')} --address {address} --task-queue {TASK_QUEUE}"
    temporal = f"{venv_binary('temporal')} workflow --address {address} --workflow-id {handle.id}"
    say(f"\n=== {spec.canary.version} waits at 10% for your decision: {ui}/{handle.id}")
    say("Watch it, then promote it or abort it (one command each):")
    say(f"  {sluice} watch {spec.service}")
    say(f"  {sluice} promote {spec.service}")
    say(f'  {sluice} abort {spec.service} --reason "not today"')
    say("or the same with the temporal CLI:")
    say(f'  {temporal} update execute --name promote --input \'{{"by": "you"}}\'')
    say(f'  {temporal} signal --name abort --input \'{{"by": "you", "reason": "not today"}}\'')
    say("Ctrl-C stops the demo and everything it started.")
    async for event in follow(client, handle.id):
        say(event_line(event))
    result = await handle.result()
    say(f"--> {result.outcome.upper()}: {result.reason}\nBrowse the Web UI; Ctrl-C to stop.")
    await asyncio.Event().wait()


def _spec(
    front: Front, stable: Service, canary: Service, backups: Path, **overrides: object
) -> DeploymentSpec:
    return canary_spec(
        SERVICE,
        front,
        stable,
        canary,
        interval=timedelta(seconds=2),  # the spec's default analysis otherwise
        backup_dir=backups,
        **overrides,  # type: ignore[arg-type]
    )


def _port_or_free(port: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def say(line: str) -> None:
    print(line, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the stack on SIGTERM as on Ctrl-C
    code = 130
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(run(args))
    sys.exit(code)


if __name__ == "__main__":
    main()
