"""`sluice report` as a user runs it, on a SQLite store written by the product's own store:
text, JSON, the page, the DORA table, and every bad input as one line and an exit code."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.evidence.store import EvidenceStore
from deploy.processes import venv_binary
from sluicegate.analysis.verdict import MetricResult, Verdict
from sluicegate.evidence import ArmNumbers, CheckRecord, EventRecord, StoreUrl

T0 = datetime.now(UTC) - timedelta(hours=1)
RUN = "01a2b3c4-0000-7000-8000-000000000001"


def _event(kind: str, minutes: float, **fields: object) -> EventRecord:
    base: dict[str, object] = {
        "deployment_id": RUN,
        "run_id": RUN,
        "service": "checkout",
        "kind": kind,
        "at": T0 + timedelta(minutes=minutes),
        "stable_version": "v1",
        "canary_version": "v2",
        "summary": kind,
    }
    return EventRecord.model_validate({**base, **fields})


def _check(number: int, breach: bool) -> CheckRecord:
    result = MetricResult(
        metric="error_rate",
        window="check",
        value=0.3 if breach else 0.0,
        bound=0.01,
        direction="max",
        requests=100,
        status="breach" if breach else "healthy",
    )
    return CheckRecord(
        deployment_id=RUN,
        run_id=RUN,
        service="checkout",
        stage="canary",
        number=number,
        at=T0 + timedelta(minutes=1, seconds=10 * number),
        canary_weight=5,
        status=result.status,
        rollback=breach,
        stable=ArmNumbers(requests=1900, errors=1, p50_ms=25, p99_ms=100),
        canary=ArmNumbers(requests=100, errors=30 if breach else 0, p50_ms=25, p99_ms=100),
        verdict=Verdict.of((result,)).model_copy(update={"rollback": breach}),
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report-cli") / "evidence.db"
    with EvidenceStore(StoreUrl.parse(str(path))) as evidence:
        evidence.write(
            [
                _event("started", 0, summary="deployment started: v1 → v2: canary 5% for 30m"),
                _event("stage_advanced", 1, canary_weight=5, stage="canary"),
                *(_check(number, breach=number == 3) for number in (1, 2, 3)),
                _event("breach", 2, canary_weight=5, stage="canary"),
                _event("rollback_verified", 2.1, canary_weight=0),
                _event("rolled_back", 2.2, summary="rolled back to 100% v1: health breach"),
            ]
        )
    return path


def sluice(store: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEGATE_")}
    env |= {"HOME": str(home), "SLUICEGATE_EVIDENCE_URL": str(store)}
    return subprocess.run(
        [venv_binary("sluice"), "report", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_text_report_says_why_it_rolled_back(store: Path, tmp_path: Path) -> None:
    done = sluice(store, tmp_path, "checkout")
    assert done.returncode == 1, done.stderr  # rolled back
    assert "checkout: v1 → v2: rolled_back" in done.stdout
    assert "breach: check 3 of stage canary" in done.stdout
    assert "error_rate = 0.3 (must be <= 0.01" in done.stdout
    assert "canary errors ▁▁█ (0 to 30%)" in done.stdout


def test_a_run_is_found_by_its_first_characters_and_json_has_every_check(
    store: Path, tmp_path: Path
) -> None:
    done = sluice(store, tmp_path, "checkout", RUN[:8], "--json")
    evidence = json.loads(done.stdout)
    assert evidence["summary"]["deployment_id"] == RUN
    assert [check["number"] for check in evidence["checks"]] == [1, 2, 3]
    assert evidence["summary"]["restored_at"] is not None


def test_the_page_goes_to_a_file_or_stdout(store: Path, tmp_path: Path) -> None:
    page = tmp_path / "checkout.html"
    done = sluice(store, tmp_path, "checkout", "--html", str(page))
    assert done.returncode == 1 and f"wrote {page}" in done.stdout
    assert page.read_text().startswith("<!DOCTYPE html>")
    piped = sluice(store, tmp_path, "checkout", "--html", "-")
    assert piped.stdout.startswith("<!DOCTYPE html>") and "wrote" not in piped.stdout


def test_the_dora_figures_as_a_table_and_as_json(store: Path, tmp_path: Path) -> None:
    table = sluice(store, tmp_path, "--since", "1d")
    assert table.returncode == 0 and "checkout" in table.stdout and "100%" in table.stdout
    figures = json.loads(sluice(store, tmp_path, "--since", "2w", "--json").stdout)
    assert [(f["service"], f["rolled_back"], f["change_failure_rate"]) for f in figures] == [
        ("checkout", 1, 1.0)
    ]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        ((), 2, "SERVICE: give a service"),
        (("Not A Name",), 2, "SERVICE: must be"),
        (("checkout", "abc", "--since", "1d"), 2, "RUN: not with --since"),
        (("--since", "5x"), 2, "--since '5x'"),
        (("checkout", "--html", "/nonexistent/dir/page.html"), 2, "cannot write it"),
        (("checkout", "ffff"), 4, "has nothing of run 'ffff' of checkout"),
        (("payments",), 4, "has nothing of any deployment of payments"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    store: Path, tmp_path: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    done = sluice(store, tmp_path, *args)
    assert done.returncode == code, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_a_store_that_is_off_says_which_setting(tmp_path: Path) -> None:
    done = sluice(Path("off"), tmp_path, "checkout")
    assert done.returncode == 2
    assert "evidence_url is off (SLUICEGATE_EVIDENCE_URL)" in done.stderr


def test_a_store_that_is_not_there_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere" / "evidence.db"
    done = sluice(missing, tmp_path, "checkout")
    assert done.returncode == 2
    assert f"no evidence store at {missing}" in done.stderr
    assert not missing.parent.exists()
