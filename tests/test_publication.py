"""Write–audit–publish: analysts only ever see a complete, checked publication."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from orchestration import cli
from orchestration.checks import expectations
from orchestration.checks.expectations import SUITES_DIR
from orchestration.publication.publish import NAMED_VIEWS, PUBLISHED_TABLES
from orchestration.settings import Settings
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
    tables = dict(
        con.execute("select table_name, table_type from information_schema.tables").fetchall()
    )
    assert {t for t, kind in tables.items() if kind == "BASE TABLE"} == {
        *PUBLISHED_TABLES,
        "publication_log",
    }
    assert {t for t, kind in tables.items() if kind == "VIEW"} == {
        f"{t}_named" for t in NAMED_VIEWS
    }
    columns = {
        c for (c,) in con.execute("select column_name from information_schema.columns").fetchall()
    }
    # (a submission id is the SHA-256 of the bytes a unit sent: it names a file, as the unit's
    # validation report does, not a person; the sign-off says which submissions it vouches for)
    assert not {c for c in columns if c.endswith("_key") or c in ("nik", "no_kk", "line")}
    [(passed, warned)] = con.execute(
        "select checks_passed, checks_warned from publication_log"
    ).fetchall()
    from orchestration.defs.definitions import defs

    # every check of the graph (dbt tests and GX suites) was evaluated before publishing
    assert passed + warned == len(list(defs().resolve_asset_graph().asset_check_keys))
    assert warned >= 1  # the submission-status suite warns: units have not sent
    for table in [*PUBLISHED_TABLES, "publication_log"]:
        parquet = home / "warehouse" / "published" / f"{table}.parquet"
        assert (
            duckdb.execute(f"select count(*) from '{parquet}'").fetchone()
            == con.execute(f"select count(*) from {table}").fetchone()
        )


def test_the_duckdb_cli_from_the_package_index_opens_the_published_file(home):
    """duckdb-cli 1.5 (what analysts install; desktop tools bundle 1.x drivers too) reads only
    older storage formats than the pipeline's DuckDB writes by default."""
    cli_duckdb = Path(sys.executable).with_name("duckdb")
    done = subprocess.run(
        [str(cli_duckdb), "-readonly", "-csv", str(published(home)), "-c",
         "select region_name, count(*) from fct_poverty_named where level = 'regency' group by 1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Kota Bontang" in done.stdout
    version = subprocess.run([str(cli_duckdb), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("v1.5")


def test_every_published_table_and_column_is_described_in_the_file_and_beside_the_parquet(home):
    con = duckdb.connect(str(published(home)), read_only=True)
    undescribed = con.execute(
        "select table_name from duckdb_tables() where not internal and coalesce(comment, '') = '' "
        "union all "
        "select view_name from duckdb_views() where not internal and coalesce(comment, '') = '' "
        "union all select table_name || '.' || column_name from duckdb_columns() "
        "where not internal and coalesce(comment, '') = ''"
    ).fetchall()
    assert undescribed == []
    [(p0,)] = con.execute(
        "select comment from duckdb_columns() "
        "where table_name = 'fct_poverty' and column_name = 'poverty_rate'"
    ).fetchall()
    assert "persentase penduduk miskin" in p0  # the Indonesian term analysts know
    dictionary = home / "warehouse" / "published" / "dictionary.csv"
    listed = duckdb.execute(
        f'select "table", "column", description from read_csv(\'{dictionary}\', all_varchar=true) '
        'where "column" is not null'
    ).fetchall()
    assert ("fct_poverty", "poverty_rate", p0) in listed
    in_file = con.execute("select count(*) from duckdb_columns() where not internal").fetchone()[0]
    assert len(listed) == in_file
    # each Parquet copy carries its table's and columns' descriptions in its schema metadata
    import pyarrow.parquet as pq

    for table in [*PUBLISHED_TABLES, "publication_log"]:
        metadata = pq.read_schema(home / "warehouse" / "published" / f"{table}.parquet").metadata
        columns = json.loads(metadata[b"column_descriptions"])
        assert metadata[b"table_description"] and set(columns) == {
            c for (c,) in con.execute(
                "select column_name from duckdb_columns() where table_name = ?", [table]
            ).fetchall()
        }, table  # fmt: skip
        assert all(columns.values()), table
    assert (
        json.loads(
            pq.read_schema(home / "warehouse" / "published" / "fct_poverty.parquet").metadata[
                b"column_descriptions"
            ]
        )["poverty_rate"]
        == p0
    )
    # the named views put the region's name beside its code
    for view in NAMED_VIEWS:
        columns = [c for (c,) in con.execute(
            "select column_name from duckdb_columns() where table_name = ? "
            "order by column_index", [f"{view}_named"]).fetchall()]  # fmt: skip
        assert columns[:2] == ["region_code", "region_name"], view


def test_blocking_check_failure_leaves_the_publication_byte_identical_and_names_the_check(
    home, tmp_path, capsys, monkeypatch
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
    monkeypatch.setattr(expectations, "SUITES_DIR", suites)
    assert run_pipeline(home) == 1
    err = capsys.readouterr().err
    assert "BLOCKED" in err and "marts/fct_poverty:gx_fct_poverty" in err
    assert published(home).read_bytes() == before
    with environment(home):
        assert cli.main(["status"]) == 0
        import dagster as dg

        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        [run] = instance.get_runs(limit=1)
        [evaluation] = [
            r.dagster_event.event_specific_data
            for r in instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            if r.dagster_event.event_specific_data.check_name == "gx_fct_poverty"
        ]
    assert "blocked by marts/fct_poverty:gx_fct_poverty" in capsys.readouterr().out
    # the failing values, as a table in the check's metadata (not only as JSON)
    [table] = [
        v for k, v in evaluation.metadata.items() if "an impossible bound, for this test" in k
    ]
    assert isinstance(table, dg.TableMetadataValue) and len(table.records) >= 1


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
    """Live dbt processes (launcher or dbt) of this SATUDATA_HOME, found through /proc."""
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
    # dbt's build has started (the launcher, or dbt after the launcher's exec)
    while not _dbt_processes(home, b"\x00build\x00") and time.monotonic() < deadline:
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


def test_a_suite_that_does_not_run_blocks_publication(home, tmp_path, capsys, monkeypatch):
    before = published(home).read_bytes()
    suites = tmp_path / "suites"
    suites.mkdir()
    for path in SUITES_DIR.glob("*.json"):
        if path.stem != "fct_employment":  # one suite missing from the folder
            (suites / path.name).write_text(path.read_text())
    monkeypatch.setattr(expectations, "SUITES_DIR", suites)
    assert run_pipeline(home) == 1
    assert "suites did not run: fct_employment" in capsys.readouterr().err
    assert published(home).read_bytes() == before


def test_review_pages_are_written_under_the_build_lock_so_two_runs_never_collide(home):
    """Two runs at once: each writes the review pages of the current publication, one after
    the other (issue 22: a shared staging folder written outside the lock failed one run)."""
    import threading

    from orchestration.defs.assets.publication import review_pages
    from orchestration.defs.resources import SatudataResource
    from orchestration.ingest.store import build_lock

    settings = Settings(home)
    resource = SatudataResource(home=str(home))
    shutil.rmtree(settings.reports / "review")
    errors: list[BaseException] = []

    def write_pages(times: int) -> None:
        try:
            for _ in range(times):
                review_pages(satudata=resource)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with build_lock(settings):  # a run holds the build file: the pages wait for it
        waiting = threading.Thread(target=write_pages, args=(1,))
        waiting.start()
        waiting.join(timeout=3)
        assert waiting.is_alive()
        assert not (settings.reports / "review").exists()
        assert not (settings.reports / ".review.tmp").exists()
    waiting.join(timeout=120)
    assert not waiting.is_alive() and errors == []
    assert (settings.reports / "review" / "2025-03" / "index.html").exists()

    runs = [threading.Thread(target=write_pages, args=(4,)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=300)
    assert errors == []
    pages = sorted(p.relative_to(settings.reports) for p in settings.reports.rglob("*.html"))
    assert Path("review/2025-03/index.html") in pages
    assert not [p for p in settings.reports.rglob("*") if ".tmp" in p.name or ".old" in p.name]
