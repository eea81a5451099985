"""Hand-written submissions through the real pipeline (ingest → dbt build); every figure is
checked against a value worked out by hand below.

Period 2025-03 (last day 2025-03-31). Lines of 2025: Bontang (64.74) z = 832,946,
Paser (64.01) z = 658,044, extreme line 391,000.

  unit 64.74.01  A1 village .1001  n=2 y=832,946 (exactly on the line: not poor)
                 A2 village .1001  n=3 y=416,473 (gap 0.5)       2 member rows only
                 A3 village .1002  n=1 y=300,000 (extreme poor)   her NIK is a woman's, declared L
  unit 64.74.02  B0 superseded submission (must not count), then B1 village .1001 n=4 y=1,000,000
  unit 64.01     C1 village 64.01.01.2009 n=2 y=500,000           member m11 = m1 (same NIK)
                 C2 village 64.01.01.2010 n=1 y=700,000
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.defs.dbt_project import DBT_EXECUTABLE, dbt_project
from orchestration.defs.definitions import defs
from tests.submissions import kk, manifest, nik, write_submission

pytestmark = pytest.mark.xdist_group("dbt")

Z_BONTANG, Z_PASER = 832_946, 658_044
G_A2 = 0.5
G_A3 = (Z_BONTANG - 300_000) / Z_BONTANG
G_C1 = (Z_PASER - 500_000) / Z_PASER


def hh(no_kk, head, village, n, y):
    return {"no_kk": no_kk, "nik_kepala": head, "nama_kepala": "X", "kode_desa": village,
            "jumlah_anggota": str(n), "pengeluaran_per_kapita": str(y), "desil": "", "tanggal_verifikasi": ""}  # fmt: skip


def member(nik_, no_kk, sex, born, status="", industry=""):
    return {"nik": nik_, "no_kk": no_kk, "nama": "X", "jenis_kelamin": sex, "tanggal_lahir": born,
            "status_pekerjaan": status, "lapangan_usaha": industry}  # fmt: skip


def receipt(no_kk, program, amount, nik_=""):
    return {
        "no_kk": no_kk,
        "nik": nik_,
        "kode_program": program,
        "tanggal_salur": "2025-03-15",
        "nilai": str(amount),
    }


M1 = nik("64.74.01", 1, birth="010180")


@pytest.fixture(scope="module")
def built_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("known") / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv("SATUDATA_HOME", str(home))
    mp.setenv("SATUDATA_PSEUDONYM_KEY", "known-answer-key")
    landing = home / "landing"
    u1, u2, u3 = "64.74.01", "64.74.02", "64.01"
    m4 = nik(u1, 4, birth="310310")  # 15th birthday on the period's last day
    write_submission(landing, "bontang-utara", {
        "keluarga": [hh(kk(u1, 1), M1, "64.74.01.1001", 2, Z_BONTANG),
                     hh(kk(u1, 2), nik(u1, 3, birth="050575"), "64.74.01.1001", 3, 416_473),
                     hh(kk(u1, 3), nik(u1, 5, female=True, birth="060650"), "64.74.01.1002", 1, 300_000)],
        "anggota": [member(M1, kk(u1, 1), "L", "1980-01-01", "bekerja", "G"),
                    member(nik(u1, 2, female=True, birth="020282"), kk(u1, 1), "P", "1982-02-02", "mengurus_rumah_tangga"),
                    member(nik(u1, 3, birth="050575"), kk(u1, 2), "L", "1975-05-05", "menganggur"),
                    member(m4, kk(u1, 2), "L", "2010-03-31", "sekolah"),
                    member(nik(u1, 5, female=True, birth="060650"), kk(u1, 3), "L", "1950-06-06", "lainnya")],
        "bantuan": [receipt(kk(u1, 2), "PKH", 750_000), receipt(kk(u1, 1), "BPNT", 200_000),
                    receipt(kk(u1, 2), "PIP", 450_000, m4)],
    }, manifest(u1, sent="2025-04-03T09:00:00+08:00"))  # fmt: skip
    b_head = nik(u2, 1, birth="010190")
    write_submission(landing, "bontang-selatan-old", {
        "keluarga": [hh(kk(u2, 9), b_head, "64.74.02.1001", 5, 100_000)],
        "anggota": [member(b_head, kk(u2, 9), "L", "1990-01-01", "menganggur")],
        "bantuan": [receipt(kk(u2, 9), "PKH", 750_000)],
    }, manifest(u2, sent="2025-04-02T09:00:00+08:00"))  # fmt: skip
    write_submission(landing, "bontang-selatan-new", {
        "keluarga": [hh(kk(u2, 1), b_head, "64.74.02.1001", 4, 1_000_000)],
        "anggota": [member(b_head, kk(u2, 1), "L", "1990-01-01", "bekerja", "C"),
                    member(nik(u2, 2, female=True, birth="010191"), kk(u2, 1), "P", "1991-01-01", "bekerja", "C"),
                    member(nik(u2, 3, birth="010115"), kk(u2, 1), "L", "2015-01-01"),
                    member(nik(u2, 4, female=True, birth="010118"), kk(u2, 1), "P", "2018-01-01")],
        "bantuan": [],
    }, manifest(u2, sent="2025-04-05T09:00:00+08:00"))  # fmt: skip
    c_head = nik(u3, 10, birth="010185")
    write_submission(landing, "paser", {
        "keluarga": [hh(kk(u3, 1), c_head, "64.01.01.2009", 2, 500_000),
                     hh(kk(u3, 2), nik(u3, 12, female=True, birth="010160"), "64.01.01.2010", 1, 700_000)],
        "anggota": [member(c_head, kk(u3, 1), "L", "1985-01-01", "bekerja", "A"),
                    member(M1, kk(u3, 1), "L", "1980-01-01", "bekerja", "A"),
                    member(nik(u3, 12, female=True, birth="010160"), kk(u3, 2), "P", "1960-01-01", "lainnya")],
        "bantuan": [receipt(kk(u3, 1), "PKH", 750_000)],
    }, manifest(u3, sent="2025-04-04T09:00:00+08:00"))  # fmt: skip
    with dg.instance_for_test() as instance:
        result = (
            defs()
            .resolve_job_def("nightly")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
    assert result.success
    DBT_MATERIALIZATIONS[:] = result.asset_materializations_for_node("warehouse_models")
    [PUBLICATION[:]] = [result.asset_materializations_for_node("publication__published_warehouse")]
    yield home
    mp.undo()


DBT_MATERIALIZATIONS: list = []  # the nightly run's dbt materializations (``built_home``)
PUBLICATION: list = []  # and its publication's


@pytest.fixture
def warehouse(built_home):
    con = duckdb.connect(str(built_home / "warehouse" / "build.duckdb"), read_only=True)
    yield con
    con.close()


def rows(con, sql):
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def one(con, table, **key):
    where = " and ".join(f"{k} = '{v}'" for k, v in key.items())
    [row] = rows(con, f"select * from marts.{table} where {where}")
    return row


def close(a, b):
    return a == pytest.approx(b, rel=1e-9, abs=1e-12) if b is not None else a is None


EXPECTED_POVERTY = {
    # region, level: households, population, poor, sum n*gap, sum n*gap², extreme poor, line, reporting/expected
    ("64", "province"): (
        6,
        13,
        6,
        3 * G_A2 + G_A3 + 2 * G_C1,
        3 * G_A2**2 + G_A3**2 + 2 * G_C1**2,
        1,
        None,
        3,
        12,
    ),
    ("64.74", "regency"): (4, 10, 4, 3 * G_A2 + G_A3, 3 * G_A2**2 + G_A3**2, 1, Z_BONTANG, 2, 3),
    ("64.74.01", "subdistrict"): (
        3,
        6,
        4,
        3 * G_A2 + G_A3,
        3 * G_A2**2 + G_A3**2,
        1,
        Z_BONTANG,
        1,
        1,
    ),
    ("64.74.02", "subdistrict"): (1, 4, 0, 0, 0, 0, Z_BONTANG, 1, 1),
    ("64.74.01.1001", "village"): (2, 5, 3, 1.5, 0.75, 0, Z_BONTANG, 1, 1),
    ("64.74.01.1002", "village"): (1, 1, 1, G_A3, G_A3**2, 1, Z_BONTANG, 1, 1),
    ("64.74.02.1001", "village"): (1, 4, 0, 0, 0, 0, Z_BONTANG, 1, 1),
    ("64.01", "regency"): (2, 3, 2, 2 * G_C1, 2 * G_C1**2, 0, Z_PASER, 1, 1),
    ("64.01.01", "subdistrict"): (2, 3, 2, 2 * G_C1, 2 * G_C1**2, 0, Z_PASER, 1, 1),
    ("64.01.01.2009", "village"): (1, 2, 2, 2 * G_C1, 2 * G_C1**2, 0, Z_PASER, 1, 1),
    ("64.01.01.2010", "village"): (1, 1, 0, 0, 0, 0, Z_PASER, 1, 1),
}


def test_fct_poverty_matches_the_hand_computation_at_every_level(warehouse):
    published = rows(warehouse, "select * from marts.fct_poverty")
    assert {(r["region_code"], r["level"]) for r in published} == set(EXPECTED_POVERTY)
    for r in published:
        hh_, pop, poor, gap, gap2, extreme, line, reporting, expected = EXPECTED_POVERTY[
            (r["region_code"], r["level"])
        ]
        assert r["period"] == "2025-03"
        assert (r["households"], r["population"], r["poor_population"]) == (hh_, pop, poor), r
        assert close(r["poverty_rate"], 100 * poor / pop)
        assert close(r["poverty_gap_index"], 100 * gap / pop)
        assert close(r["poverty_severity_index"], 100 * gap2 / pop)
        assert r["extreme_poor_population"] == extreme and close(
            r["extreme_poverty_rate"], 100 * extreme / pop
        )
        assert r["poverty_line"] == line
        assert r["poverty_line_year"] == (2025 if line else None)
        assert (r["reporting_units"], r["expected_units"]) == (reporting, expected)


def test_fct_employment_counts_the_15th_birthday_and_splits_by_poverty(warehouse):
    # aged >= 15 on 2025-03-31: m1 m2 m3 m4(15 today) m5 | b1 b2 | c1 m1' c3 ; children of B1 excluded
    expected = {"all": (10, 5, 1), "poor": (5, 2, 1), "non_poor": (5, 3, 0)}
    for status, (working_age, employed, unemployed) in expected.items():
        r = one(
            warehouse, "fct_employment", region_code="64", level="province", poverty_status=status
        )
        labour = employed + unemployed
        assert (r["working_age_population"], r["employed"], r["unemployed"], r["labour_force"]) == (
            working_age, employed, unemployed, labour
        )  # fmt: skip
        assert close(r["unemployment_rate"], 100 * unemployed / labour)
        assert close(r["participation_rate"], 100 * labour / working_age)
    r = one(
        warehouse,
        "fct_employment",
        region_code="64.74.02.1001",
        level="village",
        poverty_status="poor",
    )
    assert (
        r["working_age_population"] == 0
        and r["unemployment_rate"] is None
        and r["participation_rate"] is None
    )


@pytest.mark.parametrize(
    ("program", "recipients", "poor_recipients", "amount"),
    [("PKH", 2, 2, 1_500_000), ("BPNT", 1, 0, 200_000), ("PIP", 1, 1, 450_000),
     ("ANY", 3, 2, 2_150_000), ("UEP", 0, 0, 0)],
)  # fmt: skip
def test_fct_program_coverage_at_province_level(
    warehouse, program, recipients, poor_recipients, amount
):
    r = one(
        warehouse, "fct_program_coverage", region_code="64", level="province", program_code=program
    )
    poor_households = 3  # A2, A3, C1
    assert (r["recipient_households"], r["poor_recipient_households"], r["poor_households"]) == (
        recipients, poor_recipients, poor_households
    )  # fmt: skip
    assert close(r["coverage_rate"], 100 * poor_recipients / poor_households)
    assert close(r["exclusion_error_rate"], 100 - 100 * poor_recipients / poor_households)
    assert close(
        r["inclusion_error_rate"],
        100 * (recipients - poor_recipients) / recipients if recipients else None,
    )
    assert r["amount_disbursed"] == amount


def test_fct_program_coverage_is_null_where_there_is_no_poor_household(warehouse):
    r = one(
        warehouse,
        "fct_program_coverage",
        region_code="64.74.02",
        level="subdistrict",
        program_code="ANY",
    )
    assert (
        r["poor_households"] == 0
        and r["coverage_rate"] is None
        and r["exclusion_error_rate"] is None
    )
    assert r["amount_disbursed"] == 0  # the superseded submission's PKH does not count
    assert warehouse.execute(
        "select count(distinct program_code) from marts.fct_program_coverage"
    ).fetchone() == (9,)


def test_fct_submission_status_reports_accepted_superseded_and_missing(warehouse):
    status = {
        (r["unit_code"], r["status"]): r
        for r in rows(warehouse, "select * from marts.fct_submission_status")
    }
    assert len(status) == 13  # 12 registered units + the superseded row
    assert {u for (u, s) in status if s == "accepted"} == {"64.74.01", "64.74.02", "64.01"}
    assert {u for (u, s) in status if s == "superseded"} == {"64.74.02"}
    assert len([1 for (_, s) in status if s == "missing"]) == 9
    assert status[("64.74.01", "accepted")]["households_accepted"] == 3
    assert status[("64.74.02", "superseded")]["households_accepted"] == 1


def test_fct_data_quality_flags_size_sex_and_people_in_two_units_at_every_level(warehouse):
    found = {
        (r["region_code"], r["issue"]): r["affected_rows"]
        for r in rows(warehouse, "select * from marts.fct_data_quality where affected_rows > 0")
    }
    assert found == {
        ("64.74.01.1001", "household_size_mismatch"): 1,  # A2: 3 declared, 2 member rows
        ("64.74.01.1002", "nik_sex_mismatch"): 1,  # A3's head: woman's NIK, declared L
        ("64.74.01.1001", "person_in_several_units"): 1,  # m1 ...
        ("64.01.01.2009", "person_in_several_units"): 1,  # ... and again in Paser: both rows
        # the same rows counted at the levels above
        ("64.74.01", "household_size_mismatch"): 1,
        ("64.74.01", "nik_sex_mismatch"): 1,
        ("64.74.01", "person_in_several_units"): 1,
        ("64.74", "household_size_mismatch"): 1,
        ("64.74", "nik_sex_mismatch"): 1,
        ("64.74", "person_in_several_units"): 1,
        ("64.01.01", "person_in_several_units"): 1,
        ("64.01", "person_in_several_units"): 1,
        ("64", "household_size_mismatch"): 1,
        ("64", "nik_sex_mismatch"): 1,
        ("64", "person_in_several_units"): 2,
    }
    levels = dict(
        warehouse.execute(
            "select level, count(distinct region_code) from marts.fct_data_quality group by 1"
        ).fetchall()
    )
    assert levels == {"village": 5, "subdistrict": 3, "regency": 2, "province": 1}
    total = warehouse.execute("select count(*) from marts.fct_data_quality").fetchone()[0]
    # every region with households x the 3 row issues, and every kecamatan and above x the 4
    # sudden changes (one period here: nothing to compare with, none flagged)
    assert total == (5 + 3 + 2 + 1) * 3 + (3 + 2 + 1) * 4


def test_fct_reconciliation_sets_register_p0_beside_bps(warehouse):
    r = one(warehouse, "fct_reconciliation", region_code="64.74", level="regency")
    assert close(r["register_poverty_rate"], 40.0)
    assert r["bps_year"] <= 2025 and r["bps_poverty_rate"] is not None
    assert close(r["difference_points"], 40.0 - r["bps_poverty_rate"])
    assert (r["reporting_units"], r["expected_units"]) == (2, 3)


def test_dim_region_holds_every_kaltim_region_and_flags_submitting_units(warehouse):
    assert warehouse.execute("select level, count(*) from marts.dim_region group by 1 order by 1").fetchall() == [
        ("province", 1), ("regency", 10), ("subdistrict", 105), ("village", 1038)
    ]  # fmt: skip
    assert warehouse.execute(
        "select count(*) from marts.dim_region where is_submitting_unit"
    ).fetchone() == (12,)


def test_no_nik_no_kk_or_name_in_any_schema_of_the_built_warehouse(warehouse):
    """Staging, intermediate and marts derive from pseudonymised rows only."""
    identifiers = {M1, kk("64.74.01", 1), kk("64.01", 1), nik("64.01", 10, birth="010185")}
    columns = warehouse.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type = 'VARCHAR' and table_schema <> 'reference'"
    ).fetchall()
    assert {schema for schema, _, _ in columns} >= {"raw", "staging", "intermediate", "marts"}
    leaks = [
        (schema, table, column)
        for schema, table, column in columns
        if warehouse.execute(
            f'select count(*) from {schema}.{table} where "{column}" in (select unnest(?))',
            [sorted(identifiers)],
        ).fetchone()[0]
    ]
    assert leaks == []


def _unit_tests(project: Path, home: Path, target: Path) -> tuple[int, dict[str, str]]:
    """``dbt test --select test_type:unit`` on ``project`` against the built warehouse."""
    done = subprocess.run(
        [DBT_EXECUTABLE, "test", "--select", "test_type:unit", "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(target), "--log-path", str(target)],
        env={**os.environ, "SATUDATA_HOME": str(home)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    results = json.loads((target / "run_results.json").read_text())["results"]
    return done.returncode, {r["unique_id"]: r["status"] for r in results}


def test_the_dbt_unit_tests_pass_here_and_catch_a_broken_model(built_home, tmp_path):
    """The nightly build leaves dbt's unit tests out (static inputs: they test the SQL, not the
    night's data, so they belong to development and CI); this suite runs all of them."""
    manifest = json.loads(Path(dbt_project.manifest_path).read_text())
    declared = set(manifest["unit_tests"])
    assert len(declared) >= 4
    code, statuses = _unit_tests(Path(dbt_project.project_dir), built_home, tmp_path / "ok")
    assert code == 0 and statuses == dict.fromkeys(declared, "pass")

    # a regression: a household exactly on the poverty line counted as poor
    broken = tmp_path / "broken"
    shutil.copytree(
        dbt_project.project_dir, broken, ignore=shutil.ignore_patterns("target", "logs")
    )
    rules = broken / "macros" / "poverty.sql"  # the poverty rules, once (classify_households)
    sql = rules.read_text()
    assert "households.expenditure_per_capita < line.poverty_line as is_poor" in sql
    rules.write_text(
        sql.replace("< line.poverty_line as is_poor", "<= line.poverty_line as is_poor")
    )
    code, statuses = _unit_tests(broken, built_home, tmp_path / "broken-target")
    failed = {k for k, v in statuses.items() if v == "fail"}
    assert code == 1
    assert failed == {
        "unit_test.satudata.int_households_classified."
        "poverty_line_falls_back_to_latest_earlier_year_and_the_line_itself_is_not_poor"
    }


def test_the_nightly_dbt_build_leaves_the_unit_tests_out(built_home):
    runs = built_home / "dbt" / "runs"
    [run] = list(runs.iterdir())
    results = json.loads((run / "run_results.json").read_text())["results"]
    kinds = {r["unique_id"].split(".")[0] for r in results}
    assert kinds == {"seed", "model", "test"}


def test_the_nightly_dbt_log_keeps_warnings_and_errors_only(built_home):
    [run] = list((built_home / "dbt" / "runs").iterdir())
    log = run / "dbt.log"
    lines = log.read_text().splitlines() if log.exists() else []
    levels = {json.loads(line)["info"]["level"] for line in lines if line.strip()}
    assert levels <= {"warn", "error"}, levels


def test_dbt_version_is_answered_from_the_installed_packages_without_importing_dbt():
    """dagster-dbt asks `dbt --version` before each invocation; the launcher answers it."""
    from importlib import metadata

    done = subprocess.run(
        [DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert f"installed: {metadata.version('dbt-core')}" in done.stdout
    assert f"duckdb: {metadata.version('dbt-duckdb')}" in done.stdout
    probe = (
        "import sys; sys.argv = ['satudata-dbt', '--version']; "
        "from orchestration.launcher import dbt_main; dbt_main(); "
        "print(sorted(m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_every_dbt_model_and_seed_shows_its_row_count_and_columns_in_dagster(built_home, warehouse):
    manifest = json.loads(Path(dbt_project.manifest_path).read_text())
    nodes = {
        n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")
    }
    shown = {m.asset_key.path[-1]: m.metadata for m in DBT_MATERIALIZATIONS}
    assert set(shown) == set(nodes)
    kinds = {n["config"]["materialized"] for n in nodes.values()}
    assert {"view", "table", "seed"} <= kinds
    # every row count is the relation's own count, views and seeds included
    counts = {
        name: metadata["dagster/row_count"].value
        for name, metadata in shown.items()
        if "dagster/row_count" in metadata
    }
    assert set(counts) == set(nodes)
    for name in ("fct_poverty", "stg_raw__households", "kaltim_regions"):
        schema, alias = nodes[name]["schema"], nodes[name]["alias"]
        (count,) = warehouse.execute(f"select count(*) from {schema}.{alias}").fetchone()
        assert counts[name] == count > 0, name
    # the columns as DuckDB built them, described by the dbt docs
    no_schema = [name for name in nodes if "dagster/column_schema" not in shown[name]]
    assert no_schema == []
    poverty = {c.name: c for c in shown["fct_poverty"]["dagster/column_schema"].schema.columns}
    assert list(poverty) == [c for (c,) in warehouse.execute(
        "select column_name from duckdb_columns() where table_name = 'fct_poverty' "
        "and schema_name = 'marts' order by column_index").fetchall()]  # fmt: skip
    assert poverty["poverty_rate"].type == "DOUBLE"
    assert poverty["region_code"].type == "VARCHAR"
    assert poverty["poverty_rate"].description
    # column lineage is not fetched (docs/performance.md: the open-source UI does not show it)
    assert "dagster/column_lineage" not in shown["fct_poverty"]


def test_the_publication_shows_poverty_per_regency_and_period_and_the_latest_p0_as_numbers(
    built_home, warehouse
):
    [publication] = PUBLICATION
    table = publication.metadata["poverty_by_regency"]
    figures = {(r.data["region_code"], r.data["period"]): r.data for r in table.records}
    expected = one(warehouse, "fct_poverty", region_code="64.74", period="2025-03")
    for column in ("poverty_rate", "poverty_gap_index", "poverty_severity_index",
                   "extreme_poverty_rate"):  # fmt: skip
        assert figures[("64.74", "2025-03")][column] == pytest.approx(expected[column], rel=1e-9)
    assert {level for (_, _), r in figures.items() for level in [r["level"]]} == {
        "regency",
        "province",
    }
    province = one(warehouse, "fct_poverty", region_code="64", period="2025-03")
    assert publication.metadata["p0_64"].value == pytest.approx(province["poverty_rate"])
    assert publication.metadata["p0_64_74"].value == pytest.approx(expected["poverty_rate"])


def test_marts_and_the_publication_are_overdue_after_36_hours_and_point_to_their_code():
    graph = defs().resolve_asset_graph()
    policies = {
        key.to_user_string(): graph.get(key).freshness_policy for key in graph.get_all_asset_keys()
    }
    for key in ("marts/fct_poverty", "marts/fct_data_quality", "publication/published_warehouse"):
        assert policies[key].fail_window.to_timedelta() == dt.timedelta(hours=36), key
    assert policies["staging/stg_raw__households"] is None
    for key in ("marts/fct_poverty", "publication/published_warehouse"):
        references = graph.get(dg.AssetKey(key.split("/"))).metadata["dagster/code_references"]
        assert references.code_references, key
