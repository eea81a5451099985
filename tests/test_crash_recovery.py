"""A run killed with -9 at any stage: the next run leaves nothing stale behind and publishes
what a clean run of the same submissions publishes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.pipeline import environment, run_pipeline
from tests.submissions import manifest, register, write_submission

pytestmark = pytest.mark.xdist_group("crash")

KEY = "pipeline-test-key"
# where the run kills itself (SIGKILL, as kill -9 would): a function it calls at that stage
KILL_AT = {
    "reading": "orchestration.ingest.pipeline.validate",  # the tables read, a UTF-8 copy in tmp/
    "quarantine move": "orchestration.ingest.landing.quarantine",  # recorded, not yet moved
    "dbt": "dbt build",  # while dbt builds (its child process, found through /proc)
    "checks": "orchestration.checks.expectations.validate_suites",
    "publication": "orchestration.publication.publish._fsync",  # the new file written, not yet in place
}
KILLED_RUN = """
import importlib, os, pathlib, signal, sys, threading, time
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
def when_dbt_builds():
    while True:
        for proc in pathlib.Path("/proc").iterdir():
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == os.getpid() and b"\\x00build\\x00" in (proc / "cmdline").read_bytes():
                    die()
            except (OSError, ValueError):
                pass
        time.sleep(0.01)
if sys.argv[1] == "dbt build":
    threading.Thread(target=when_dbt_builds, daemon=True).start()
else:
    module, name = sys.argv[1].rsplit(".", 1)
    setattr(importlib.import_module(module), name, die)
from orchestration import cli
sys.exit(cli.main(["run"]))
"""
TABLES = ("fct_poverty", "fct_employment", "fct_program_coverage", "fct_data_quality")


def landing(home: Path) -> None:
    """Two good units (one written in Windows-1252 with ';') and one to quarantine."""
    folder = home / "landing"
    write_submission(folder, "selatan", register("64.74.02", households=12), manifest("64.74.02"))
    villages = [f"64.74.01.100{v}" for v in range(1, 7)]
    write_submission(folder, "utara", register("64.74.01", households=12, villages=villages),
                     manifest("64.74.01"), encoding="cp1252", delimiter=";")  # fmt: skip
    broken = register("64.74.03", households=5, villages=["64.74.03.1001"])
    for row in broken["keluarga"]:
        row["kode_desa"] = "64.74.03.9999"  # every household rejected: quarantined
    write_submission(folder, "barat", broken, manifest("64.74.03"))


def published(home: Path) -> dict[str, list]:
    con = duckdb.connect(str(home / "warehouse" / "published.duckdb"), read_only=True)
    try:
        figures = {t: con.execute(f"select * from {t} order by all").fetchall() for t in TABLES}
        figures["fct_submission_status"] = con.execute(
            "select unit_code, period, status, households_accepted, rows_rejected, reason "
            "from fct_submission_status order by all"
        ).fetchall()
        return figures
    finally:
        con.close()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, list]:
    home = tmp_path_factory.mktemp("clean") / "data"
    landing(home)
    assert run_pipeline(home) == 0
    return published(home)


def stale(home: Path) -> list[str]:
    """Anything a killed run may leave that a finished run must have cleaned or completed."""
    left = [str(p) for p in (home / "tmp").glob("ingest-*")]
    left += [str(p) for p in (home / "warehouse").glob(".published-*")]
    left += [str(p) for p in (home / "warehouse" / "publications").iterdir()
             if not (p / "warehouse.duckdb").exists()]  # fmt: skip
    left += [str(p) for p in (home / "landing").iterdir()]
    for folder in (home / "quarantine").iterdir():
        names = sorted(p.name for p in folder.iterdir())
        if names != ["barat", "laporan_validasi_validation_report.html",
                     "laporan_validasi_validation_report.json",
                     "laporan_validasi_validation_report.rejects.csv"]:  # fmt: skip
            left.append(f"{folder}: {names}")
    return left


@pytest.mark.parametrize("stage", KILL_AT)
def test_a_run_killed_at_any_stage_is_recovered_by_the_next_run(tmp_path, clean, stage):
    home = tmp_path / "data"
    landing(home)
    env = {**os.environ, "SATUDATA_HOME": str(home), "SATUDATA_PSEUDONYM_KEY": KEY}
    env.pop("DAGSTER_HOME", None)
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, KILL_AT[stage]], env=env,
                            capture_output=True, timeout=600)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert run_pipeline(home) == 0
    assert stale(home) == []
    assert published(home) == clean
    import dagster as dg

    with environment(home):
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        assert dg.DagsterRunStatus.STARTED not in [r.status for r in instance.get_runs()]
    shutil.rmtree(home)
