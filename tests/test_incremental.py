"""The person- and household-level models are incremental by submission: a revision rebuilds
its own submission only, and the result equals a full rebuild; rows built by other code or
other reference data are rebuilt (dbt_project/macros/incremental.sql)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from orchestration import cli
from orchestration.defs.dbt_project import DBT_EXECUTABLE, dbt_project
from tests.pipeline import build_published, copy_home, environment, run_pipeline
from tests.submissions import manifest, register, write_submission

pytestmark = pytest.mark.xdist_group("incremental")

INCREMENTAL = ("int_households_classified", "int_members_aged")
COMPARED = [f"intermediate.{t}" for t in INCREMENTAL] + [
    "intermediate.int_household_programs_aggregated",
    "marts.fct_poverty",
    "marts.fct_employment",
    "marts.fct_program_coverage",
    "marts.fct_data_quality",
]


def build(home: Path) -> Path:
    return home / "warehouse" / "build.duckdb"


def rows(path: Path, table: str) -> list[tuple]:
    """The table's rows in a fixed order, doubles rounded: summing in another row order moves
    the last bit of P1/P2."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        schema, name = table.split(".")
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        ).fetchall()
        select = ", ".join(
            f'round("{c}", 9)' if t in ("DOUBLE", "FLOAT") else f'"{c}"' for c, t in columns
        )
        return con.execute(f"select {select} from {table} order by all").fetchall()
    finally:
        con.close()


def last_dbt_run(home: Path) -> Path:
    return max((home / "dbt" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


def executed_sql(run: Path, model: str) -> str:
    [path] = (run / "run").rglob(f"{model}.sql")
    return path.read_text()


@pytest.fixture(scope="module")
def revised(tmp_path_factory):
    """Two units published, then a revision of one of them (more households, sent later)."""
    home = build_published(tmp_path_factory.mktemp("incremental") / "data")
    before = build(home).read_bytes()
    write_submission(
        home / "landing", "64.74.02-revisi", register("64.74.02", households=26),
        manifest("64.74.02", sent="2025-04-09T09:00:00+08:00"),
    )  # fmt: skip
    assert run_pipeline(home) == 0
    assert build(home).read_bytes() != before
    return home


def test_a_revision_rebuilds_only_its_own_submission(revised):
    run = last_dbt_run(revised)
    for model in INCREMENTAL:
        # dbt took the incremental path: the new rows are inserted, the table is not rebuilt
        assert executed_sql(run, model).lstrip().startswith("insert into")
        [compiled] = (run / "compiled").rglob(f"{model}.sql")
        assert "not in (select distinct submission_id from" in compiled.read_text()
    con = duckdb.connect(str(build(revised)), read_only=True)
    latest = dict(
        con.execute(
            "select unit_code, submission_id from raw.submissions where status = 'accepted'"
        ).fetchall()
    )
    for model in INCREMENTAL:
        held = dict(
            con.execute(
                f"select unit_code, any_value(submission_id) from intermediate.{model} "
                "group by all having count(distinct submission_id) = 1"
            ).fetchall()
        )
        assert held == latest  # one submission per unit: the superseded one is gone
    assert con.execute(
        "select count(*) from intermediate.int_households_classified where unit_code = '64.74.02'"
    ).fetchone() == (26,)
    con.close()


def test_the_incremental_result_equals_a_full_refresh(revised, tmp_path):
    full = copy_home(revised, tmp_path / "full")
    # `satudata run --full-refresh`: the same data, every incremental model rebuilt in full
    with environment(full):
        assert cli.main(["run", "--full-refresh"]) == 0
    run = last_dbt_run(full)
    assert json.loads((run / "run_results.json").read_text())["args"]["full_refresh"] is True
    for model in INCREMENTAL:
        assert not executed_sql(run, model).lstrip().startswith("insert into")
    for table in COMPARED:
        assert rows(build(revised), table) == rows(build(full), table), table


def test_rows_of_other_code_or_reference_data_and_tables_without_the_digest_are_rebuilt(
    revised, tmp_path
):
    home = copy_home(revised, tmp_path / "data")
    expected = {t: rows(build(home), t) for t in COMPARED}
    con = duckdb.connect(str(build(home)))
    # built under another poverty line (a changed seed would change the digest the same way)
    con.execute(
        "update intermediate.int_households_classified "
        "set poverty_line = 1, is_poor = false, build_digest = 'an older digest' "
        "where unit_code = '64.74.01'"
    )
    # built before the model was incremental: no digest column at all
    con.execute("alter table intermediate.int_members_aged drop column build_digest")
    con.close()
    assert run_pipeline(home) == 0  # nothing new in the landing folder
    for table in COMPARED:
        assert rows(build(home), table) == expected[table], table


def _digests(project: Path, home: Path, target: Path) -> dict[str, str]:
    subprocess.run(
        [DBT_EXECUTABLE, "compile", "--select", *INCREMENTAL, "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(target), "--log-path", str(target)],
        env={**os.environ, "SATUDATA_HOME": str(home)}, check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    found = {}
    for model in INCREMENTAL:
        [path] = (target / "compiled").rglob(f"{model}.sql")
        [found[model]] = re.findall(r"'([0-9a-f]{32})' as build_digest", path.read_text())
    return found


def test_the_digest_follows_the_poverty_lines_and_the_models_code(revised, tmp_path):
    project = Path(dbt_project.project_dir)
    now = _digests(project, revised, tmp_path / "now")
    con = duckdb.connect(str(build(revised)), read_only=True)
    for model, digest in now.items():
        assert con.execute(
            f"select distinct build_digest from intermediate.{model}"
        ).fetchall() == [(digest,)]
    con.close()

    changed = tmp_path / "project"
    shutil.copytree(project, changed, ignore=shutil.ignore_patterns("target", "logs"))
    lines = changed / "seeds" / "poverty_lines.csv"
    lines.chmod(0o644)
    text = lines.read_text()
    assert "64.01,2023,600302," in text
    lines.write_text(text.replace("64.01,2023,600302,", "64.01,2023,600303,"))  # one rupiah
    after_seed = _digests(changed, revised, tmp_path / "seed")
    assert after_seed[INCREMENTAL[0]] != now[INCREMENTAL[0]]
    assert after_seed[INCREMENTAL[1]] != now[INCREMENTAL[1]]  # members follow households

    model = changed / "models" / "intermediate" / "int_members_aged.sql"
    model.write_text(model.read_text() + "\n-- a comment is a change of code\n")
    after_code = _digests(changed, revised, tmp_path / "code")
    assert after_code[INCREMENTAL[0]] == after_seed[INCREMENTAL[0]]  # upstream only
    assert after_code[INCREMENTAL[1]] != after_seed[INCREMENTAL[1]]

    # the poverty rules live in a macro (macros/poverty.sql): a change there rebuilds too
    rules = changed / "macros" / "poverty.sql"
    rules.write_text(rules.read_text().replace("< line.poverty_line as is_poor",
                                               "<= line.poverty_line as is_poor"))  # fmt: skip
    after_rules = _digests(changed, revised, tmp_path / "rules")
    assert after_rules[INCREMENTAL[0]] != after_code[INCREMENTAL[0]]
    assert after_rules[INCREMENTAL[1]] != after_code[INCREMENTAL[1]]  # members carry is_poor
