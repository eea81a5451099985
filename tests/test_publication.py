"""Write–audit–publish: analysts only ever see a complete, checked publication."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from orchestration import child, cli
from orchestration.checks.gx_runner import SUITES_DIR
from orchestration.dbt_project import dbt_project
from orchestration.publish import PUBLISHED_TABLES
from tests.pipeline import add_submissions, build_published, copy_home, environment, run_pipeline

pytestmark = pytest.mark.xdist_group("publication")


@pytest.fixture(scope="module")
def published_home(tmp_path_factory):
    return build_published(tmp_path_factory.mktemp("published") / "data")


@pytest.fixture
def home(published_home, tmp_path):
    return copy_home(published_home, tmp_path / "data")


def published(home):
    return home / "warehouse" / "published.duckdb"


def figures(path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select * from fct_poverty order by all").fetchall()
    finally:
        con.close()


def test_published_file_holds_the_contract_tables_and_no_person_level_data(home):
    con = duckdb.connect(str(published(home)), read_only=True)
    tables = {
        t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()
    }
    assert tables == {*PUBLISHED_TABLES, "publication_log"}
    columns = {
        c for (c,) in con.execute("select column_name from information_schema.columns").fetchall()
    }
    assert not {
        c for c in columns if c.endswith("_key") or c in ("nik", "no_kk", "submission_id", "line")
    }
    [(passed, warned)] = con.execute(
        "select checks_passed, checks_warned from publication_log"
    ).fetchall()
    from orchestration.definitions import defs

    # every check of the graph (dbt tests and GX suites) was evaluated before publishing
    assert passed + warned == len(list(defs.resolve_asset_graph().asset_check_keys))
    assert warned >= 1  # the submission-status suite warns: units have not sent
    for table in [*PUBLISHED_TABLES, "publication_log"]:
        parquet = home / "warehouse" / "published" / f"{table}.parquet"
        assert (
            duckdb.execute(f"select count(*) from '{parquet}'").fetchone()
            == con.execute(f"select count(*) from {table}").fetchone()
        )


def test_blocking_check_failure_leaves_the_publication_byte_identical_and_names_the_check(
    home, tmp_path, capsys
):
    before = published(home).read_bytes()
    suites = tmp_path / "suites"
    suites.mkdir()
    for path in SUITES_DIR.glob("*.json"):
        (suites / path.name).write_text(path.read_text())
    poverty = json.loads((suites / "fct_poverty.json").read_text())
    poverty["expectations"].append({"type": "expect_column_values_to_be_between",
                                    "kwargs": {"column": "poverty_rate", "max_value": 0.001},
                                    "meta": {"severity": "ERROR", "notes": "an impossible bound, for this test"}})  # fmt: skip
    (suites / "fct_poverty.json").write_text(json.dumps(poverty))
    add_submissions(home, sent="2025-04-05T09:00:00+08:00", households=15)
    assert run_pipeline(home, SATUDATA_EXPECTATIONS_DIR=str(suites)) == 1
    err = capsys.readouterr().err
    assert "BLOCKED" in err and "marts/fct_poverty:gx_fct_poverty" in err
    assert published(home).read_bytes() == before
    with environment(home):
        assert cli.main(["status"]) == 0
    assert "blocked by marts/fct_poverty:gx_fct_poverty" in capsys.readouterr().out


def test_reader_opened_before_a_publication_keeps_working_and_a_new_reader_sees_new_data(home):
    old = figures(published(home))
    reader = duckdb.connect(str(published(home)), read_only=True)
    assert reader.execute("select count(*) from fct_poverty").fetchone()[0] == len(old)
    add_submissions(
        home, sent="2025-04-05T09:00:00+08:00", households=15
    )  # a revision: 15 households
    assert run_pipeline(home) == 0
    assert sorted(reader.execute("select * from fct_poverty").fetchall()) == sorted(
        old
    )  # still readable, unchanged
    reader.close()
    new = figures(published(home))
    assert new != old
    con = duckdb.connect(str(published(home)), read_only=True)
    assert con.execute("select count(*) from publication_log").fetchone() == (2,)
    assert con.execute(
        "select sum(households) from fct_poverty where level = 'province'"
    ).fetchone() == (30,)


def test_publishing_twice_from_the_same_inputs_gives_the_same_figures(home):
    first = {t: figures_of(home, t) for t in PUBLISHED_TABLES}
    assert run_pipeline(home) == 0
    assert {t: figures_of(home, t) for t in PUBLISHED_TABLES} == first


def figures_of(home, table):
    con = duckdb.connect(str(published(home)), read_only=True)
    try:
        return con.execute(f"select * from {table} order by all").fetchall()
    finally:
        con.close()


def _last_invocation(log: Path) -> str:
    """The part of a dbt log file written by its last invocation (dbt appends to the file)."""
    return log.read_text().rsplit("==============================\n", 1)[-1]


def test_dbt_does_not_reparse_the_project_in_a_new_home_nor_in_the_next_run(home):
    """dbt runs from the data root with SATUDATA_HOME=".", so its profile renders the same path
    in every home and the parse state written when the project was prepared serves them all.
    The standby dbt parses during ingestion (its log: ``home/dbt/dbt.log``) and builds on that
    manifest: the build itself parses nothing."""
    standby_log = home / "dbt" / "dbt.log"

    def log_of_last_run() -> str:
        latest = max((home / "dbt" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
        return (latest / "dbt.log").read_text()

    # as in a new home: only the state prepared with the project (``satudata prepare``)
    (home / "dbt" / "partial_parse.msgpack").unlink()
    assert run_pipeline(home) == 0
    assert "Unable to do partial parsing" not in _last_invocation(standby_log)
    assert "Partial parsing enabled" in _last_invocation(standby_log)
    assert "Partial parsing" not in log_of_last_run()  # the build used the standby's parse
    assert (home / "dbt" / "partial_parse.msgpack").exists()  # this home's own, for next time
    before = list(child._standbys)
    inode = (home / "dbt" / "partial_parse.msgpack").stat().st_ino
    assert run_pipeline(home) == 0
    assert "Unable to do partial parsing" not in _last_invocation(standby_log)
    assert "Partial parsing" not in log_of_last_run()
    # the build parsed nothing, so the state it was handed is not copied back over the home's
    assert (home / "dbt" / "partial_parse.msgpack").stat().st_ino == inode
    # the run started a standby dbt during ingestion, and dbt ran on it (a standby nobody
    # used would still be waiting)
    [standby] = [p for p in child._standbys if p not in before]
    assert standby.wait(timeout=10) == 0

    # a home's own state older than the project's prepared one (a code change since) is not used
    own = home / "dbt" / "partial_parse.msgpack"
    own.write_bytes(b"not a parse state")
    prepared = Path(dbt_project.project_dir) / dbt_project.target_path / own.name
    os.utime(own, (prepared.stat().st_mtime - 60,) * 2)
    assert run_pipeline(home) == 0
    assert "Partial parsing enabled" in _last_invocation(standby_log)
    assert own.read_bytes() != b"not a parse state"  # replaced by the prepared one

    # without a standby, dbt parses when asked, with the same state
    os.utime(own, (prepared.stat().st_mtime - 60,) * 2)
    inode = own.stat().st_ino
    assert run_pipeline(home, SATUDATA_DBT_STANDBY="0") == 0
    assert "Partial parsing enabled" in log_of_last_run()
    assert "Unable to do partial parsing" not in log_of_last_run()
    assert own.stat().st_ino != inode  # the state this dbt wrote, kept for the next run


def test_a_build_on_the_standbys_parse_ends_with_dbts_exit_codes(home, tmp_path):
    """0 when everything passed, 1 when a model or test failed, 2 when dbt could not run: what
    dagster-dbt reads to fail the step (dbt's command line gives the same codes)."""
    script = f"""
import json, os, sys
from pathlib import Path
import duckdb
from orchestration import child
from orchestration.settings import DBT_PROJECT_DIR
os.environ["SATUDATA_HOME"] = {str(home)!r}
parsed = child._parse_ahead()
os.chdir({str(home)!r})
os.environ["SATUDATA_HOME"] = "."
project = str(DBT_PROJECT_DIR)
common = ["--project-dir", project, "--profiles-dir", project, "--target-path", {str(tmp_path)!r}]
codes = {{"passed": parsed.run(["build", "--select", "stg_raw__submissions", *common])}}
con = duckdb.connect("warehouse/build.duckdb")
con.execute("update raw.submissions set status = 'lost'")  # accepted_values fails
con.close()
codes["a test failed"] = parsed.run(["build", "--select", "stg_raw__submissions", *common])
codes["unusable"] = parsed.run(["build", "--threads", "many", *common])
print(json.dumps(codes))
child.exit_now(0)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    assert codes == {"passed": 0, "a test failed": 1, "unusable": 2}


def test_rollback_restores_the_previous_publication(home, capsys):
    old = figures(published(home))
    add_submissions(home, sent="2025-04-05T09:00:00+08:00", households=15)
    assert run_pipeline(home) == 0
    assert figures(published(home)) != old
    with environment(home):
        assert cli.main(["rollback"]) == 0
    assert figures(published(home)) == old
    parquet = home / "warehouse" / "published" / "fct_poverty.parquet"
    assert duckdb.execute(
        f"select sum(households) from '{parquet}' where level = 'province'"
    ).fetchone() == (40,)


def _dbt_processes(home: Path, name: bytes = b"dbt") -> list[int]:
    """Live dbt processes (launcher, standby, dbt) of this SATUDATA_HOME, found through /proc."""
    marker = f"SATUDATA_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and name in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def test_a_run_killed_mid_way_leaves_the_previous_publication_intact_and_the_next_run_recovers(
    home,
):
    before = published(home).read_bytes()
    add_submissions(home, sent="2025-04-05T09:00:00+08:00", households=15)
    env = {**os.environ, "SATUDATA_HOME": str(home), "SATUDATA_PSEUDONYM_KEY": "pipeline-test-key"}
    env.pop("DAGSTER_HOME", None)
    process = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "run"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    # the launcher starts when dbt builds (the standby waits from the start of the run)
    while not _dbt_processes(home, b"satudata-dbt") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before dbt started"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # dbt dies with the run instead of holding build.duckdb's lock as an orphan
    deadline = time.monotonic() + 10
    while _dbt_processes(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _dbt_processes(home), "dbt outlived the run that started it"
    assert published(home).read_bytes() == before
    assert figures(published(home))  # readable
    assert run_pipeline(home) == 0
    con = duckdb.connect(str(published(home)), read_only=True)
    assert con.execute(
        "select sum(households) from fct_poverty where level = 'province'"
    ).fetchone() == (30,)
    import dagster as dg

    with environment(home):
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        statuses = [r.status for r in instance.get_runs()]
    assert dg.DagsterRunStatus.STARTED not in statuses
    assert dg.DagsterRunStatus.FAILURE in statuses


def test_a_suite_that_does_not_run_blocks_publication(home, tmp_path, capsys):
    before = published(home).read_bytes()
    suites = tmp_path / "suites"
    suites.mkdir()
    for path in SUITES_DIR.glob("*.json"):
        if path.stem != "fct_employment":  # one suite missing from the folder
            (suites / path.name).write_text(path.read_text())
    assert run_pipeline(home, SATUDATA_EXPECTATIONS_DIR=str(suites)) == 1
    assert "suites did not run: fct_employment" in capsys.readouterr().err
    assert published(home).read_bytes() == before
