"""What `make run` does on a fresh data root: demo submissions, one nightly run, a publication."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration import cli
from tests.pipeline import environment

pytestmark = pytest.mark.xdist_group("make-run")


def test_demo_data_then_run_publishes_every_mart_and_prints_how_to_query(tmp_path, capsys):
    home = tmp_path / "data"
    with environment(home):
        assert cli.main(["demo-data", "--if-empty", "--period", "2025-03"]) == 0
        env = dict(os.environ)
    satudata = str(Path(sys.executable).with_name("satudata"))
    run = subprocess.run([satudata, "run"], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    # quiet by default: the summary, no library notices, INFO/DEBUG lines or colour codes
    assert "Warning" not in run.stderr and " INFO " not in run.stderr, run.stderr[-3000:]
    assert " DEBUG " not in run.stderr + out and "\x1b" not in run.stderr + out
    assert "START sql" not in out and len(out.splitlines()) < 60, out
    log = (home / "logs" / "last-run.log").read_text()
    assert "START sql view model staging.stg_raw__households" in log and "\x1b" not in log
    with environment(home):
        assert cli.main(["status"]) == 0
    status = capsys.readouterr().out
    (index,) = [line.split(": ", 1)[1] for line in status.splitlines() if "Review pages" in line]
    assert Path(index).is_file() and "<period>" not in index
    # every DuckDB file was closed (checkpointed) by whoever wrote it
    assert sorted(p.name for p in (home / "warehouse").glob("*.wal")) == []
    assert (
        "Published" in out and f"duckdb -readonly {home / 'warehouse' / 'published.duckdb'}" in out
    )
    con = duckdb.connect(str(home / "warehouse" / "published.duckdb"), read_only=True)
    for table in ("dim_region", "fct_poverty", "fct_employment", "fct_program_coverage",
                  "fct_submission_status", "fct_data_quality", "fct_reconciliation", "publication_log"):  # fmt: skip
        assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table
    status = dict(
        con.execute("select status, count(*) from fct_submission_status group by 1").fetchall()
    )
    assert status == {"accepted": 11, "superseded": 1, "quarantined": 1}
    [(units, expected)] = con.execute(
        "select reporting_units, expected_units from fct_poverty where level = 'province'"
    ).fetchall()
    assert (units, expected) == (
        11,
        12,
    )  # Kutai Barat was quarantined: a partial figure shows as partial
