"""The stack the fault bench breaks: real processes on loopback, and the means to break them.

One dev server (SQLite file in the state directory), one Envoy site (v1, v2, steady load),
Sluicegate workers as separate processes, and two gates (bench.gate) in front of Envoy's
admin port: the router's way in and the metric source's, so each can be taken away alone.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from bench import until
from bench.gate import Gate
from deploy.processes import Process
from deploy.sample_service import start_sample_service
from deploy.stack import LocalStack, Site
from deploy.temporal_server import start_dev_server
from sluicegate.contracts import DeploymentResult, DeploymentStatus
from sluicegate.settings import Settings
from workers.client import connect
from workflows.canary import CanaryDeployment

Handle = WorkflowHandle[CanaryDeployment, DeploymentResult]
RPS = 200


@dataclass
class Rig:
    """The stack under test: one dev server, one Envoy site, gates, the worker processes."""

    stack: LocalStack
    server: Process
    ports: tuple[int, int]  # the dev server's gRPC and Web UI ports
    client: Client
    site: Site
    router_gate: Gate  # the router's way to Envoy's admin API
    stats_gate: Gate  # the metric source's way to Envoy's admin API
    rps: float
    workers: list[Process] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports[0]}"

    def start_worker(self, task_queue: str) -> Process:
        worker = self.stack.worker(self.address, task_queue)
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[Process]:
        self.workers = [w for w in self.workers if w.alive()]
        return self.workers

    def kill_worker(self, worker: Process) -> None:
        """SIGKILL a worker process; it is no longer one of the rig's workers."""
        worker.kill()
        self.workers.remove(worker)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    async def restart_server(self) -> None:
        """Start the dev server again on the same ports and SQLite file."""
        port, ui_port = self.ports
        stack = self.stack
        self.server = await asyncio.to_thread(
            start_dev_server, stack.state_dir, port, ui_port, stack.log_dir
        )
        stack.processes.append(self.server)

    async def heal(self) -> list[str]:
        """Undo every fault a run may have left: gates open, Envoy, canary and load up."""
        healed = []
        for gate in (self.router_gate, self.stats_gate):
            gate.set("pass")
        envoy = self.site.envoy
        if envoy.process is None or not envoy.process.alive():
            await asyncio.to_thread(envoy.restart)
            healed.append("Envoy restarted")
        canary = self.site.canary
        if not canary.process.alive():
            canary.process = await asyncio.to_thread(
                start_sample_service, canary.version, canary.port, self.stack.log_dir
            )
            self.stack.processes.append(canary.process)
            healed.append("canary restarted")
        if not self.site.load.alive():
            self.site.load = await asyncio.to_thread(self.stack.load, self.site.front.url, self.rps)
            healed.append("load restarted")
        return healed


@asynccontextmanager
async def open_rig(state_dir: Path, rps: float = RPS) -> AsyncIterator[Rig]:
    """Start the dev server, the site and the gates; stop every process, by PID, at the end."""
    stack = LocalStack(state_dir)
    gates: list[Gate] = []
    try:
        address, ui_port = await asyncio.to_thread(stack.temporal)
        server = stack.processes[-1]
        assert isinstance(server, Process)
        client = await connect(Settings(temporal_address=address))
        site = await asyncio.to_thread(Site, stack, "faults", rps)
        gates = [await Gate(site.envoy.admin_port).start() for _ in range(2)]
        port = int(address.rsplit(":", 1)[1])
        yield Rig(stack, server, (port, ui_port), client, site, gates[0], gates[1], rps)
    finally:
        for gate in gates:
            await gate.close()
        stack.close()


@dataclass
class Run:
    """One deployment under a fault: what the scenario needs to aim it, and what it noted."""

    rig: Rig
    number: int
    task_queue: str
    rng: random.Random
    faulty: bool
    handle: Handle | None = None
    phase_at_fault: str = "not injected"
    fault_at: float | None = None  # time.monotonic() of the fault
    notes: list[str] = field(default_factory=list)
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def deployment(self) -> Handle:
        assert self.handle is not None, "the deployment has not started"
        return self.handle

    async def random_wait(self, longest: float) -> None:
        """Wait a seeded random time up to `longest` s: the fault's timing is the experiment."""
        await asyncio.sleep(self.rng.uniform(0, longest))

    async def mark(self) -> None:
        """Note the phase and the time just before the fault lands."""
        self.phase_at_fault = await phase_of(self.deployment)
        self.fault_at = time.monotonic()

    async def wait_for_weight(self, weight: int) -> None:
        """Until the deployment reports at least `weight`% to the canary."""

        async def reached() -> bool:
            status = await status_of(self.deployment)
            return status is not None and status.canary_weight >= weight

        await until(reached, f"{self.deployment.id} reaches {weight}%", timeout=60)

    async def wait_for_activity(self, activity_type: str) -> None:
        """Until a worker is running (not just scheduled) an activity of this type."""

        async def running() -> bool:
            return await running_activity(self.deployment, activity_type)

        await until(running, f"{self.deployment.id} runs {activity_type}", timeout=60)

    def later(self, delay: float, action: str, act: Callable[[], None]) -> None:
        """Do `act` after `delay` s, unless the run ends first; noted when done."""

        async def after() -> None:
            await asyncio.sleep(delay)
            act()
            self.notes.append(f"{action} after {delay:.1f} s")

        self.background.append(asyncio.create_task(after()))

    async def end_background(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        self.background.clear()


async def status_of(handle: Handle) -> DeploymentStatus | None:
    """The deployment's status, or None if no worker answers within 2 s."""
    try:
        return await handle.query(CanaryDeployment.status, rpc_timeout=timedelta(seconds=2))
    except (RPCError, TimeoutError):
        return None


async def phase_of(handle: Handle) -> str:
    """The deployment's phase, or `unknown` if no worker answers within 2 s."""
    status = await status_of(handle)
    return status.phase if status else "unknown"


async def running_activity(handle: Handle, activity_type: str) -> bool:
    """True while a worker has started (and not finished) an activity of this type."""
    try:
        description = await handle.describe(rpc_timeout=timedelta(seconds=2))
    except (RPCError, TimeoutError):
        return False
    return any(
        pending.activity_type.name == activity_type
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in description.raw_description.pending_activities
    )


async def all_polling(client: Client, task_queue: str, workers: Sequence[Process]) -> bool:
    """True once every worker process polls both the workflow and the activity queue."""
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=kind,
        )
        try:
            response = await client.workflow_service.describe_task_queue(request)
        except RPCError:
            return False
        pids = {poller.identity.split("@", 1)[0] for poller in response.pollers}
        if any(str(worker.pid) not in pids for worker in workers):
            return False
    return True
