"""Great Expectations suites: the SQL path really fails, and every suite fails on data that breaks it."""

from __future__ import annotations

import json
import os
import shutil
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest

from orchestration.checks import gx_runner
from tests.pipeline import build_published

pytestmark = pytest.mark.xdist_group("gate")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_published(tmp_path_factory.mktemp("gate") / "data") / "warehouse" / "build.duckdb"


def test_gx_is_pinned_and_its_private_dialect_list_is_still_there():
    """The runner extends GX's private _PERSISTED_CONNECTION_DIALECTS: a GX upgrade must be deliberate."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    assert version("great_expectations") == "1.24.1"
    assert isinstance(engine._PERSISTED_CONNECTION_DIALECTS, tuple)
    gx_runner.persist_duckdb_connections()
    gx_runner.persist_duckdb_connections()
    assert sum(1 for d in engine._PERSISTED_CONNECTION_DIALECTS if d == "duckdb") == 1


def test_a_failing_expectation_fails_through_the_sql_path_with_its_values(tmp_path):
    database = tmp_path / "t.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema s; create table s.t as select range as a from range(1000)")
    con.close()
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "t.json").write_text(json.dumps({"name": "t", "meta": {"table": "s.t"}, "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "max_value": 997}, "meta": {"severity": "ERROR"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"severity": "ERROR"}},
    ]}))  # fmt: skip
    [result] = gx_runner.run_suites(database, suites)
    assert result.evaluated == 2
    [failure] = result.failures  # the null check passes: no IndexError-style blanket failure
    assert failure.exception is None
    assert failure.unexpected_count == 2 and sorted(failure.sample) == [998, 999]


def test_every_suite_passes_on_a_good_build(built):
    results = gx_runner.run_suites(built)
    assert {r.name for r in results} == {p.stem for p in gx_runner.SUITES_DIR.glob("*.json")}
    assert {r.name: [f.notes or f.expectation for f in r.errors] for r in results if r.errors} == {}


def test_the_prewarmed_runner_is_handed_the_file_once_and_a_dead_one_is_replaced(built):
    gx_runner.prewarm()
    warm = list(gx_runner._warm)
    assert len(warm) == 1  # one import of GX; its workers are forked from it
    gx_runner.prewarm()
    assert gx_runner._warm == warm  # still waiting: not started twice
    results = gx_runner.run_suites(built)
    assert not [r.name for r in results if r.errors]
    assert [r.name for r in results] == [
        s["name"] for s in gx_runner.load_suites()
    ]  # all, in order
    assert all(p.returncode == 0 for p in warm) and gx_runner._warm == []
    assert len(gx_runner._share(built, gx_runner.load_suites(), gx_runner.WORKERS)) == 2
    gx_runner.prewarm()
    gx_runner._warm[0].kill()
    gx_runner._warm[0].wait()
    assert not [r.name for r in gx_runner.run_suites(built) if r.errors]  # a fresh runner


def test_the_suites_are_shared_between_workers_by_what_they_cost(built):
    suites = gx_runner.load_suites()
    groups = gx_runner._share(built, suites, 2)
    assert sorted(n for g in groups for n in g) == sorted(s["name"] for s in suites)
    con = duckdb.connect(str(built), read_only=True)
    rows = dict(
        con.execute(
            "select schema_name || '.' || table_name, estimated_size from duckdb_tables()"
        ).fetchall()
    )
    con.close()
    cost = {s["name"]: gx_runner.suite_cost(s, rows[s["meta"]["table"]]) for s in suites}
    first, second = (sum(cost[n] for n in g) for g in groups)
    assert abs(first - second) <= max(cost.values())  # as even as whole suites allow
    costliest = sorted(cost, key=lambda n: -cost[n])[:2]
    assert not any(set(costliest) <= set(g) for g in groups)  # the two costliest apart


# one breakage per suite, each violating an ERROR expectation of that suite only
BREAKAGES = {
    "dim_region": "update marts.dim_region set level = 'kelurahan' where region_code = '64.74.02.1001'",
    "fct_poverty": "update marts.fct_poverty set poverty_gap_index = poverty_rate + 1 where level = 'village' "
    "and region_code = (select min(region_code) from marts.fct_poverty where level = 'village')",
    "fct_employment": "update marts.fct_employment set labour_force = labour_force + 1 where level = 'province' "
    "and poverty_status = 'all'",
    "fct_program_coverage": "update marts.fct_program_coverage set poor_recipient_households = recipient_households + 1 "
    "where program_code = 'PKH' and level = 'province'",
    "fct_submission_status": "delete from marts.fct_submission_status where status = 'missing' and unit_code = '64.01'",
    "fct_data_quality": "update marts.fct_data_quality set affected_rows = -1 where issue = 'nik_sex_mismatch'",
    "fct_reconciliation": "update marts.fct_reconciliation set register_poverty_rate = 150 where level = 'province'",
    "int_households_classified": "update intermediate.int_households_classified set household_size = 0 "
    "where household_key = (select min(household_key) from intermediate.int_households_classified)",
    "int_members_aged": "update intermediate.int_members_aged set age_years = 200 "
    "where person_key = (select min(person_key) from intermediate.int_members_aged)",
}


def test_each_suite_fails_on_data_that_breaks_it(built, tmp_path):
    assert set(BREAKAGES) == {p.stem for p in gx_runner.SUITES_DIR.glob("*.json")}
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(built, broken)
    con = duckdb.connect(str(broken))
    for sql in BREAKAGES.values():
        con.execute(sql)
    con.close()
    failed = {r.name for r in gx_runner.run_suites(broken) if r.errors}
    assert failed == set(BREAKAGES)


@pytest.mark.parametrize(
    ("notes", "sql"),
    [
        ("households of each region equals the sum over the regions below it",
         "update marts.fct_poverty set households = households + 1 where level = 'regency'"),
        ("freshness: the newest period with an accepted submission is in the table",
         "delete from marts.fct_poverty where period = (select max(period) from marts.fct_poverty)"),
        ("every region_code is in dim_region",
         "update marts.fct_poverty set region_code = '99.99' where level = 'province'"),
    ],
)  # fmt: skip
def test_fct_poverty_suite_catches_inconsistent_levels_stale_data_and_unknown_regions(
    built, tmp_path, notes, sql
):
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(built, broken)
    con = duckdb.connect(str(broken))
    con.execute(sql)
    con.close()
    [poverty] = [r for r in gx_runner.run_suites(broken) if r.name == "fct_poverty"]
    assert notes in {f.notes for f in poverty.errors}


def test_a_forked_gx_worker_returns_its_results_or_its_failure():
    def read(pid_and_pipe):
        pid, pipe = pid_and_pipe
        with os.fdopen(pipe) as handle:
            text = handle.read()
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), text

    assert read(gx_runner._fork_worker(lambda: [{"name": "x"}])) == (0, '[{"name": "x"}]')
    code, text = read(gx_runner._fork_worker(lambda: 1 / 0))
    assert code == 1 and text == ""  # the runner then fails: a suite is never silently dropped


@pytest.mark.parametrize(
    ("model", "key"),
    [("int_members_aged", "person_key"), ("int_households_classified", "household_key")],
)
def test_the_key_of_each_person_level_table_is_unique_by_a_blocking_dbt_test(model, key):
    """The GX suites of these tables leave key uniqueness to dbt (one check, half the cost)."""
    from orchestration.dbt_project import dbt_project

    nodes = json.loads(Path(dbt_project.manifest_path).read_text())["nodes"].values()
    gated = [
        n
        for n in nodes
        if n["resource_type"] == "test"
        and n.get("attached_node") == f"model.satudata.{model}"
        and n["test_metadata"]["name"] == "unique_combination"
        and n["test_metadata"]["kwargs"]["columns"] == ["submission_id", key]
        and n["config"]["severity"].upper() == "ERROR"
    ]
    assert len(gated) == 1
