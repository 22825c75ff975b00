"""`make demo`: a whole release of a two-instance fleet, then a faulty one rolled back by itself.

Everything runs on loopback and is started and stopped here: the Temporal dev server with
its Web UI, a data plane, the v1 fleet (two sample services), a steady load and a
Sluicegate worker whose settings declare two commands, `start-fleet` and `retire-fleet`
(deploy/fleet_hooks.py). Each deployment's hooks do the rest: its `pre_rollout` hook
starts the new fleet, smoke checks hit it directly, the stages and a short guard at 100%
run, and its `post_promotion` hook retires the old fleet; after a rollback its
`on_rollback` hook stops the fleet it started. With `--once` it exits after two
deployments (non-zero if either ended wrongly); otherwise it starts a third that waits at
a manual gate, prints the one-line commands that promote or abort it, and keeps the stack
up for browsing until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.routers import router_for
from deploy import fleet_hooks
from deploy.fleet_hooks import Fleet
from deploy.fronts import FRONTS, Front
from deploy.haproxy import haproxy_binary
from deploy.nginx import nginx_binary
from deploy.processes import REPO_ROOT, free_port, venv_binary
from deploy.stack import LocalStack, canary_spec
from frontends.client.deployments import DeploymentHandle, follow, start_deployment
from frontends.client.lines import event_line, hook_lines
from frontends.client.reports import deployment_evidence, page
from sluicegate.contracts import DeploymentResult, DeploymentStatus, HookResult
from sluicegate.errors import SluicegateError
from sluicegate.evidence import DeploymentEvidence
from sluicegate.settings import CommandSetting, Settings
from sluicegate.spec import DeploymentSpec
from workers.client import connect

DEFAULT_STATE_DIR = Path(".state") / "demo"  # under the directory it is started in
TASK_QUEUE = "sluicegate-demo"
SERVICE = "shop"
REPORT_WAIT_S = 30  # for the worker's recorder to write the rollback's outcome
LOAD_RPS = 300
GATED_STAGES = [{"name": "review", "weight": 10, "bake": "PT5S", "manual_gate": True}]
INSTANCES = 2  # per version
GUARD = timedelta(seconds=6)  # post_promotion.watch: judged at 100% before v1 is retired
HOOK_TIMEOUT = "PT30S"
# What the worker's command hooks may run: the program, fixed arguments, declared ones.
START_ARGUMENTS = ("version", "ports", "error-rate", "delay-ms")
RETIRE_ARGUMENTS = ("version", "ports")


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
        help="where Temporal's SQLite file, backups, logs and the fleets' PID files go; "
        "emptied at start, after stopping any instance an earlier run left "
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
    state_dir: Path = args.state_dir.resolve()  # the hook commands run elsewhere
    fleet_hooks.retire_all(state_dir)  # instances an interrupted earlier demo left running
    shutil.rmtree(state_dir, ignore_errors=True)  # each demo starts from an empty history
    stack = LocalStack(state_dir)
    try:
        ports = _distinct_free_ports(3 * INSTANCES)  # fixed ones, given to the hooks
        v1, v2 = Fleet("v1", ports[:INSTANCES]), Fleet("v2", ports[INSTANCES : 2 * INSTANCES])
        v3 = Fleet("v3", ports[2 * INSTANCES :], error_rate=0.05, delay_ms=250)
        address, ui_port = stack.temporal(ui_port=_port_or_free(args.ui_port))
        ui = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows"
        commands = fleet_commands(state_dir)
        say(f"Temporal Web UI: {ui}   (logs in {stack.log_dir})")
        say("The worker's settings declare the commands its hooks may run:")
        for name, setting in commands.items():
            arguments = ", ".join(setting.arguments)
            say(f"  {name}: {' '.join(setting.argv)}  (arguments: {arguments})")
        say(f"v1 is in production today, {INSTANCES} instances (started with start-fleet):")
        for line in run_fleet_command(commands["start-fleet"], v1.start_args()):
            say(f"  {line}")
        v1_pids = fleet_pids(state_dir, v1)
        front = stack.front(args.router, SERVICE, v1, slots=INSTANCES)
        stack.load(front.url, LOAD_RPS)
        metrics = f"127.0.0.1:{free_port()}"
        stack.worker(address, TASK_QUEUE, commands, metrics_address=metrics)
        say(f"The worker's Prometheus metrics: http://{metrics}/metrics (docs/OBSERVABILITY.md)")
        client = await connect(Settings(temporal_address=address))
        name = {"envoy": "Envoy", "haproxy": "HAProxy", "nginx": "nginx"}[front.kind]
        say(f"{name} on {front.url} takes {LOAD_RPS} requests/s; v1 serves all of it.")

        backups = state_dir / "backups"
        healthy = await deploy(client, _spec(front, v1, v2, backups), ui)
        v1_left = [pid for pid in v1_pids if fleet_hooks.alive(pid)]
        retired = not v1_left and not _answering(v1) and _answering(v2) == v2.ports
        say(
            f"v1's instances (pids {_listed(v1_pids)}) "
            + (f"are gone; v2's {INSTANCES} instances answer." if retired else "are not retired!")
        )
        faulty = await deploy(client, _spec(front, v2, v3, backups), ui)
        stopped = not _answering(v3) and not fleet_pids(state_dir, v3)
        say("v3's instances " + ("are stopped." if stopped else "still answer: not stopped!"))
        at_rest = await router_for(_spec(front, v2, v3, backups).router).read_state()
        say(f"{name} now: {at_rest.describe()}")
        report = await write_report(stack.evidence, state_dir / "report-v3.html")
        expected = {
            "v2 promoted": healthy.outcome == "promoted",
            "v2's hooks start-v2, v2-up, v2-up, retire-v1 passed in order": _hooks_ran(
                healthy, ["start-v2", "v2-up", "v2-up", "retire-v1"]
            ),
            "v1 retired": retired,
            "v3 rolled back": faulty.outcome == "rolled_back",
            # Caught in a stage, or at 100% by the guard (HAProxy judges errors alone).
            "v3's hooks start-v3, v3-up (once or twice), stop-v3 passed in order": _hooks_ran(
                faulty, ["start-v3", "v3-up", "stop-v3"], ["start-v3", "v3-up", "v3-up", "stop-v3"]
            ),
            "v3 stopped": stopped,
            f"{name} at 100% v2": at_rest.canary_weight == 0
            and set(at_rest.stable_endpoints) == set(v2.addresses),
            "v2 answering": _answering(v2) == v2.ports,
            "v3's report written": report is not None,
        }
        failed = [what for what, held in expected.items() if not held]
        ok = not failed
        if ok:
            say("Demo PASSED: v2 promoted and v1 retired; v3 rolled back and stopped.")
        else:
            say(f"Demo FAILED, not as expected: {'; '.join(failed)}")
        if args.once:
            return 0 if ok else 1
        v4 = Fleet("v4", _distinct_free_ports(INSTANCES, avoid=ports))
        gated = _spec(front, v2, v4, backups, stages=GATED_STAGES)
        await _interactive(client, gated, address, ui)
        return 0 if ok else 1
    finally:
        stack.close()
        for line in fleet_hooks.retire_all(state_dir):
            say(f"  cleanup: {line}")


async def write_report(evidence: Path, page_file: Path) -> Path | None:
    """The report page of the latest (rolled-back) deployment, once the worker's recorder
    has written its outcome to the evidence store (it writes within a second)."""
    settings = Settings(evidence_url=str(evidence))

    def rolled_back() -> DeploymentEvidence | None:
        try:
            found = deployment_evidence(settings, SERVICE)
        except SluicegateError:
            return None
        return found if found.summary.outcome == "rolled_back" else None

    for _ in range(REPORT_WAIT_S * 10):
        if (found := await asyncio.to_thread(rolled_back)) is not None:
            page_file.write_text(page(settings, found), encoding="utf-8")
            say(f"v3's report, every check charted: file://{page_file}")
            again = f"SLUICEGATE_EVIDENCE_URL={evidence} {venv_binary('sluice')} report {SERVICE}"
            say(f"  the same, or as text without --html: {again} --html report.html")
            return page_file
        await asyncio.sleep(0.1)
    say(f"v3's report: the evidence store {evidence} has no outcome of it")
    return None


def fleet_commands(state_dir: Path) -> dict[str, CommandSetting]:
    """The worker's `[commands]`: this interpreter runs deploy/fleet_hooks.py on `state_dir`."""
    program = (sys.executable, "-m", "deploy.fleet_hooks")
    where = f"--state-dir={state_dir}"
    env = {"PYTHONPATH": str(REPO_ROOT)}
    return {
        "start-fleet": CommandSetting(
            argv=(*program, "start", where), arguments=START_ARGUMENTS, env=env, cwd=REPO_ROOT
        ),
        "retire-fleet": CommandSetting(
            argv=(*program, "retire", where), arguments=RETIRE_ARGUMENTS, env=env, cwd=REPO_ROOT
        ),
    }


def run_fleet_command(setting: CommandSetting, args: dict[str, str]) -> list[str]:
    """Run a declared command as a hook would (argv, then `--name=value`); its lines."""
    argv = [
        *setting.argv,
        *(f"--{name}={args[name]}" for name in setting.arguments if name in args),
    ]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **setting.env},
        cwd=setting.cwd,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.splitlines()


def fleet_pids(state_dir: Path, fleet: Fleet) -> list[int]:
    """The live instances of `fleet` its PID files name."""
    pids = (fleet_hooks.running_pid(state_dir, fleet.version, port) for port in fleet.ports)
    return [pid for pid in pids if pid is not None]


def fleet_hooks_spec(stable: Fleet, canary: Fleet) -> dict[str, Any]:
    """The spec's `hooks`, `smoke` and `post_promotion`: the canary's fleet is started
    before any traffic and stopped after a rollback; stable's is retired after the guard."""

    def command(name: str, command: str, args: dict[str, str]) -> dict[str, Any]:
        hook = {"type": "command", "name": name, "command": command, "args": args}
        return {**hook, "timeout": HOOK_TIMEOUT}

    start = command(f"start-{canary.version}", "start-fleet", canary.start_args())
    retire = command(f"retire-{stable.version}", "retire-fleet", stable.retire_args())
    stop = command(f"stop-{canary.version}", "retire-fleet", canary.retire_args())
    return {
        "hooks": {"pre_rollout": [start], "post_promotion": [retire], "on_rollback": [stop]},
        "smoke": [
            {
                "type": "smoke",
                "name": f"{canary.version}-up",
                "path": "/healthz",
                "requests": 5,
                "body_contains": f'"version": "{canary.version}"',
            }
        ],
        "post_promotion": {"watch": GUARD},
    }


async def deploy(client: Client, spec: DeploymentSpec, ui: str) -> DeploymentResult:
    """Start one deployment, print each transition, hook and live check, return its result."""
    handle = await start_deployment(client, spec, TASK_QUEUE)
    say(f"\n=== Deploying {spec.canary.version} over {spec.stable.version}: {ui}/{handle.id}")
    result = await _follow(client, handle)
    say(f"--> {result.outcome.upper()}: {result.reason}")
    if result.outcome == "rolled_back" and result.evidence is not None:
        verdict = result.evidence.verdict
        for metric in (*verdict.results, *verdict.comparisons):
            say(f"    {metric.status:>12}  {metric.describe()}")
    return result


async def _follow(client: Client, handle: DeploymentHandle) -> DeploymentResult:
    """Print each transition, live check and hook result of a deployment until it ends."""
    shown = 0  # hook results printed so far: each before the status that first has it
    async for event in follow(client, handle.id):
        if isinstance(event, DeploymentStatus):
            shown = _say_hooks(event.hooks, shown)
        say(event_line(event))
    result = await handle.result()
    _say_hooks(result.hooks, shown)
    return result


def _say_hooks(hooks: Sequence[HookResult], shown: int) -> int:
    """Print the hook results after the first `shown`; how many are printed now."""
    for hook in hooks[shown:]:
        for line in hook_lines(hook):
            say(line)
    return max(shown, len(hooks))


def _hooks_ran(result: DeploymentResult, *orders: list[str]) -> bool:
    """Whether the hooks that ran are one of `orders`, in that order, and each passed."""
    return [hook.name for hook in result.hooks] in orders and all(h.ok for h in result.hooks)


def _answering(fleet: Fleet) -> tuple[int, ...]:
    """The ports of `fleet` on which an instance answers as its version."""
    return tuple(p for p in fleet.ports if fleet_hooks.healthy_version(p) == fleet.version)


def _listed(pids: Sequence[int]) -> str:
    return ", ".join(str(pid) for pid in pids) or "none"


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
    result = await _follow(client, handle)
    say(f"--> {result.outcome.upper()}: {result.reason}\nBrowse the Web UI; Ctrl-C to stop.")
    await asyncio.Event().wait()


def _spec(
    front: Front,
    stable: Fleet,
    canary: Fleet,
    backups: Path,
    stages: list[dict[str, Any]] | None = None,
) -> DeploymentSpec:
    return canary_spec(
        SERVICE,
        front,
        stable,
        canary,
        stages=stages,
        interval=timedelta(seconds=2),  # the spec's default analysis otherwise
        backup_dir=backups,
        top_level=fleet_hooks_spec(stable, canary),
    )


def _distinct_free_ports(count: int, avoid: Sequence[int] = ()) -> tuple[int, ...]:
    """`count` different free ports, none of `avoid`: the fleets' fixed ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port not in avoid:
            ports.append(port)
    return tuple(ports)


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
