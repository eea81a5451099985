"""Great Expectations suites: the SQL path really fails, and every suite fails on data that breaks it."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest

from orchestration.checks import expectations
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
    expectations.persist_duckdb_connections()
    expectations.persist_duckdb_connections()
    assert sum(1 for d in engine._PERSISTED_CONNECTION_DIALECTS if d == "duckdb") == 1


def test_a_failing_expectation_fails_through_the_sql_path_with_its_values(tmp_path, monkeypatch):
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
    monkeypatch.setattr(expectations, "SUITES_DIR", suites)
    [result] = expectations.run_suites(database)
    assert result.evaluated == 2
    [failure] = result.failures  # the null check passes: no IndexError-style blanket failure
    assert failure.exception is None
    assert failure.unexpected_count == 2 and sorted(r["a"] for r in failure.sample) == [998, 999]
    assert failure.rule == "a <= 997"


def test_every_suite_passes_on_a_good_build(built):
    results = expectations.run_suites(built)
    assert {r.name for r in results} == {p.stem for p in expectations.SUITES_DIR.glob("*.json")}
    assert {r.name: [f.notes or f.expectation for f in r.errors] for r in results if r.errors} == {}


def test_validating_in_this_process_leaves_the_build_file_free_for_the_next_writer(built):
    """The checks run in the run's own process: GX must close every connection it opened,
    or this process could not open the file again with other settings (the next ingestion)."""
    expectations.run_suites(built)
    duckdb.connect(str(built)).close()  # read-write: refused while GX holds a connection


# one breakage per suite, each violating an ERROR expectation of that suite only
BREAKAGES = {
    "dim_region": "update marts.dim_region set region_name = null where region_code = '64.74.02.1001'",
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
    assert set(BREAKAGES) == {p.stem for p in expectations.SUITES_DIR.glob("*.json")}
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(built, broken)
    con = duckdb.connect(str(broken))
    for sql in BREAKAGES.values():
        con.execute(sql)
    con.close()
    failed = {r.name for r in expectations.run_suites(broken) if r.errors}
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
    [poverty] = [r for r in expectations.run_suites(broken) if r.name == "fct_poverty"]
    assert notes in {f.notes for f in poverty.errors}


@pytest.mark.parametrize(
    ("model", "key"),
    [("int_members_aged", "person_key"), ("int_households_classified", "household_key")],
)
def test_the_key_of_each_person_level_table_is_unique_by_a_blocking_dbt_test(model, key):
    """The GX suites of these tables leave key uniqueness to dbt (one check, half the cost)."""
    from orchestration.defs.dbt_project import dbt_project

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


def test_fct_data_quality_suite_catches_a_region_whose_count_is_not_its_villages_sum(
    built, tmp_path
):
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(built, broken)
    con = duckdb.connect(str(broken))
    con.execute(
        "update marts.fct_data_quality set affected_rows = affected_rows + 1 where level = 'regency'"
    )
    con.close()
    [quality] = [r for r in expectations.run_suites(broken) if r.name == "fct_data_quality"]
    assert "each region's count equals the sum over its villages" in {
        f.notes for f in quality.errors
    }


def _dbt_checks() -> dict[str, dict[object, set]]:
    """model -> {column, or the sorted tuple of a combination's columns: {what dbt states}},
    from the manifest: data tests and enforced constraints."""
    from orchestration.defs.dbt_project import dbt_project

    manifest = json.loads(Path(dbt_project.manifest_path).read_text())
    found: dict[str, dict[object, set]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            for name, column in node["columns"].items():
                for constraint in column.get("constraints") or []:
                    kinds = {"primary_key": {"not_null", "unique"}}.get(
                        constraint["type"], {constraint["type"]}
                    )
                    found.setdefault(node["name"], {}).setdefault(name, set()).update(kinds)
        elif node["resource_type"] == "test" and node.get("test_metadata"):
            model = (node.get("attached_node") or "").rsplit(".", 1)[-1]
            meta = node["test_metadata"]
            key = node.get("column_name") or tuple(sorted(meta["kwargs"].get("columns") or []))
            what = meta["name"]
            if what == "accepted_values":
                what = ("accepted_values", tuple(sorted(map(str, meta["kwargs"]["values"]))))
            found.setdefault(model, {}).setdefault(key, set()).add(what)
    return found


def test_no_check_is_stated_both_in_dbt_and_in_a_gx_suite():
    """Structural checks (not null, unique, accepted values) live in dbt; the GX gate keeps what
    dbt does not state (docs/checks.md)."""
    dbt = _dbt_checks()
    twice = []
    for suite in sorted(expectations.SUITES_DIR.glob("*.json")):
        stated = dbt.get(suite.stem, {})
        for expectation in json.loads(suite.read_text())["expectations"]:
            kind, kwargs = expectation["type"], expectation.get("kwargs", {})
            column = kwargs.get("column")
            same = {
                "expect_column_values_to_not_be_null": "not_null" in stated.get(column, set()),
                "expect_column_values_to_be_unique": "unique" in stated.get(column, set()),
                "expect_column_values_to_be_in_set": (
                    "accepted_values",
                    tuple(sorted(map(str, kwargs.get("value_set") or []))),
                )
                in stated.get(column, set()),
                "expect_compound_columns_to_be_unique": "unique_combination"
                in stated.get(tuple(sorted(kwargs.get("column_list") or [])), set()),
            }.get(kind, False)
            if same:
                twice.append(f"{suite.stem}: {kind} {column or kwargs.get('column_list')}")
    assert twice == []
    assert "not_null" in dbt["fct_poverty"]["region_code"]  # (the reader sees dbt's checks)


def test_the_checks_page_names_every_suite_with_its_number_of_checks():
    page = (Path(__file__).parent.parent / "docs" / "checks.md").read_text()
    for suite in sorted(expectations.SUITES_DIR.glob("*.json")):
        count = len(json.loads(suite.read_text())["expectations"])
        assert f"| `{suite.stem}` | {count} |" in page, suite.stem


def test_a_failed_rule_samples_its_rows_with_their_keys(tmp_path):
    """Region, level and period beside the value, for number and text value sets alike."""
    from orchestration.checks.expectations import Failure, _sample_with_keys

    con = duckdb.connect(str(tmp_path / "k.duckdb"))
    con.execute(
        "create table t as select * from (values ('64.74', 'regency', '2025-03', 3, 'x'), "
        "('64.71', 'regency', '2025-03', 0, 'L')) v(region_code, level, period, n, sex)"
    )
    numbers = Failure("expect_column_values_to_be_in_set", "WARN", "n", None, 1, [],
                      kwargs={"column": "n", "value_set": [0]})  # fmt: skip
    words = Failure("expect_column_values_to_be_in_set", "ERROR", "sex", None, 1, [],
                    kwargs={"column": "sex", "value_set": ["L", "P"]})  # fmt: skip
    keys = {"region_code": "64.74", "level": "regency", "period": "2025-03"}
    assert _sample_with_keys(con, "t", numbers) == [{**keys, "n": 3}]
    assert _sample_with_keys(con, "t", words) == [{**keys, "sex": "x"}]
    assert numbers.rule == "n in [0]"
