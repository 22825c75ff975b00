"""`make demo` itself (`sluicegate-demo`), run once, so the main job can never rot: the
hooks start the new fleet, retire the old one after the guard, and stop a faulty one
after its rollback."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
from pathlib import Path

from deploy.fleet_hooks import alive
from deploy.processes import free_port, venv_binary

REPO = Path(__file__).resolve().parent.parent
# What deploy/fleet_hooks.py prints for each instance it starts or stops.
INSTANCE = re.compile(r"\b(started|stopped) (v\d) on 127\.0\.0\.1:\d+ \(pid (\d+)")


def pids(lines: list[str], action: str, version: str) -> set[int]:
    """The PIDs the demo's lines say were `action` (started, stopped) for `version`."""
    found = (INSTANCE.search(line) for line in lines)
    return {int(m[3]) for m in found if m is not None and m[1] == action and m[2] == version}


def in_order(lines: list[str], *wanted: str) -> list[int]:
    """The index of the first line containing each of `wanted`, each after the one before."""
    indexes: list[int] = []
    start = 0
    for text in wanted:
        index = next((i for i in range(start, len(lines)) if text in lines[i]), None)
        assert index is not None, f"no {text!r} after line {start}:\n" + "\n".join(lines)
        indexes.append(index)
        start = index + 1
    return indexes


def test_demo_releases_a_fleet_with_hooks_and_rolls_back_a_faulty_one(tmp_path: Path) -> None:
    argv = [venv_binary("sluicegate-demo"), "--once"]
    argv += ["--state-dir", str(tmp_path / "demo"), "--ui-port", str(free_port())]
    demo = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    # Which started instances ran when each outcome was printed, before the demo's cleanup.
    running_at: dict[str, dict[str, set[int]]] = {}

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("--> "):
                running_at[line.split(":")[0]] = {
                    version: {pid for pid in pids(lines, "started", version) if alive(pid)}
                    for version in ("v1", "v2", "v3")
                }

    reader = threading.Thread(target=read)
    reader.start()
    try:
        demo.wait(timeout=240)
    finally:
        if demo.poll() is None:  # stop it as Ctrl-C would, so it stops what it started
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=60)
        reader.join(timeout=10)
    text = "\n".join(lines)
    assert demo.returncode == 0, text
    assert "Demo PASSED" in text
    assert "/namespaces/default/workflows/deploy-shop" in text  # the Web UI link

    # v2: its pre_rollout hook starts it, smoke passes, the stages and the guard run, then
    # the post_promotion hook retires v1.
    v1, v2, v3 = (pids(lines, "started", version) for version in ("v1", "v2", "v3"))
    assert len(v1) == len(v2) == len(v3) == 2, text
    in_order(
        lines,
        "[pre_rollout] hook start-v2 (command) passed",
        "started v2 on",
        "[smoke before any traffic] hook v2-up (smoke) passed: 10 requests to 2 endpoints",
        "progressing stage canary: canary at 5%",
        "progressing stage gradual: canary at 50%",
        "[smoke at 100%] hook v2-up (smoke) passed",
        "guarding stage post-promotion: canary at 100%",
        "[post_promotion] hook retire-v1 (command) passed",
        "stopped v1 on",
        "--> PROMOTED",
        "are gone; v2's 2 instances answer.",
    )
    assert pids(lines, "stopped", "v1") == v1
    assert running_at["--> PROMOTED"] == {"v1": set(), "v2": v2, "v3": set()}, text

    # v3: started by its hook, rolled back by itself, stopped by its on_rollback hook.
    in_order(
        lines,
        "--> PROMOTED",
        "[pre_rollout] hook start-v3 (command) passed",
        "[smoke before any traffic] hook v3-up (smoke) passed",
        "rolling_back stage",
        "[on_rollback] hook stop-v3 (command) passed",
        "stopped v3 on",
        "--> ROLLED_BACK: health breach",
        "v3's instances are stopped.",
    )
    assert "latency_p99_ms" in text  # the failing numbers are shown
    assert pids(lines, "stopped", "v3") == v3
    assert running_at["--> ROLLED_BACK"]["v3"] == set(), text

    # The demo stops everything it started, the fleets the hooks started included.
    assert not [pid for pid in v1 | v2 | v3 if alive(pid)], text
