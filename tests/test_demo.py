"""`make demo` itself (`sluicegate-demo`), run once, so the main job can never rot."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from deploy.processes import free_port, venv_binary

REPO = Path(__file__).resolve().parent.parent


def test_demo_promotes_a_healthy_canary_and_rolls_back_a_faulty_one(tmp_path: Path) -> None:
    argv = [venv_binary("sluicegate-demo"), "--once"]
    argv += ["--state-dir", str(tmp_path / "demo"), "--ui-port", str(free_port())]
    demo = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = demo.communicate(timeout=240)
    finally:
        if demo.poll() is None:  # stop it as Ctrl-C would, so it stops what it started
            demo.send_signal(signal.SIGINT)
            demo.communicate(timeout=60)
    text = output.decode()
    assert demo.returncode == 0, text
    assert "--> PROMOTED" in text
    assert "--> ROLLED_BACK: health breach" in text
    assert "latency_p99_ms" in text  # the failing numbers are shown
    assert "Demo PASSED" in text
    assert "/namespaces/default/workflows/deploy-shop" in text  # the Web UI link
