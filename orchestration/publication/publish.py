"""Publication: the audited marts become the analysts' read-only DuckDB file, atomically.

The published tables are written to a temporary file in the warehouse folder, fsynced,
hard-linked into ``publications/<id>/`` (the history) and renamed over
``published.duckdb``: a reader sees the old file or the new one, never a mix; a reader
that opened the old file keeps reading it (its inode lives on). The Parquet copies are
written into the publication's folder and ``published/`` is a symlink swapped the same way.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.settings import DBT_PROJECT_DIR, Settings

# The published contract (shared/contracts/published.md), plus fct_reconciliation and the
# Forum Satu Data's tables (fct_pending_revisions, fct_signoff_log, fct_target_progress) and
# BPS's official figures (ref_bps_poverty).
PUBLISHED_TABLES = {
    "dim_region": "region_code",
    "fct_poverty": "period, level, region_code",
    "fct_employment": "period, level, region_code, poverty_status",
    "fct_program_coverage": "period, level, region_code, program_code",
    "fct_submission_status": "period, unit_code, status, submitted_at",
    "fct_data_quality": "period, level, region_code, issue",
    "fct_reconciliation": "period, level, region_code",
    "fct_pending_revisions": "period, level, region_code, measure",
    "fct_signoff_log": "decided_at",
    "fct_target_progress": "period, level, region_code, target_id",
    "ref_bps_poverty": "region_code, stats_year, stats_period",
}
LOG_DDL = """
create table publication_log (
    publication_id varchar not null,
    published_at timestamptz not null,
    run_id varchar not null,
    periods varchar not null,
    checks_passed integer not null,
    checks_warned integer not null,
    signoff_log_intact boolean,
    signoff_log_problems varchar
)
"""


# The storage format of published.duckdb: what DuckDB 1.3 and every later release reads (the
# CLI from the package index, the drivers that desktop tools bundle), whichever DuckDB the
# pipeline runs; the newest format would lock those out.
STORAGE_VERSION = "v1.3.0"
# fact tables that also get a view ``<table>_named`` with the region's name beside its code
NAMED_VIEWS = (
    "fct_poverty",
    "fct_employment",
    "fct_program_coverage",
    "fct_data_quality",
    "fct_reconciliation",
)
LOG_DESCRIPTIONS = {
    "": "One row per publication (log publikasi): when, from which run, which periods, and how "
    "many checks passed or warned.",
    "publication_id": "Publication id: the time it was published and the run's id.",
    "published_at": "When it was published (waktu publikasi).",
    "run_id": "The Dagster run that built and checked it.",
    "periods": "Periods (periode) published, comma-separated.",
    "checks_passed": "Checks (dbt tests and Great Expectations suites) that passed.",
    "checks_warned": "Checks that failed with WARN severity (recorded, not blocking).",
    "signoff_log_intact": "Whether the sign-off log was found intact when this was built; when "
    "not, no confirmation or approval is published and every figure is provisional.",
    "signoff_log_problems": "What was wrong with the sign-off log (a decision changed, removed or "
    "inserted), when it was not intact.",
}


def _descriptions(settings: Settings, run_id: str) -> dict[str, dict[str, str]]:
    """table -> {"": the table's description, column: its description}, from the dbt docs of
    the manifest this run's dbt build wrote (``dbt/runs/<run id>``), else the project's. The
    project's own target folder is rewritten by any ``satudata prepare`` meanwhile."""
    built = settings.home / "dbt" / "runs" / run_id / "manifest.json"
    path = built if built.exists() else DBT_PROJECT_DIR / "target" / "manifest.json"
    manifest = json.loads(path.read_text())
    found = {"publication_log": LOG_DESCRIPTIONS}
    for table in PUBLISHED_TABLES:
        node = manifest["nodes"][f"model.satudata.{table}"]
        columns = {name: c.get("description") or "" for name, c in node["columns"].items()}
        found[table] = {"": " ".join(node.get("description", "").split()), **columns}
    for table in NAMED_VIEWS:
        found[f"{table}_named"] = {
            **found[table],
            "": f"{table} with each region's name (region_name) beside its code.",
            "region_name": "Region name (nama wilayah), from dim_region.",
        }
    return found


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _describe(con: duckdb.DuckDBPyConnection, descriptions: dict) -> list[tuple]:
    """Table and column comments in the published file; returns the data dictionary's rows
    (table, column, data type, description)."""
    rows = []
    for table, described in descriptions.items():
        kind = "view" if table.endswith("_named") else "table"
        con.execute(f"comment on {kind} {table} is {_quote(described.get('', ''))}")
        rows.append((table, "", kind, described.get("", "")))
        for column, data_type in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = 'pub' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall():
            text = described.get(column, "")
            con.execute(f'comment on column {table}."{column}" is {_quote(text)}')
            rows.append((table, column, data_type, text))
    return rows


def _parquet_metadata(described: dict[str, str]) -> str:
    """The table's and its columns' descriptions as a Parquet file's key-value metadata
    (``pyarrow.parquet.read_schema(path).metadata``): ``table_description`` and
    ``column_descriptions`` (JSON, column -> description)."""
    columns = json.dumps({k: v for k, v in described.items() if k}, ensure_ascii=False)
    return (
        f"{{table_description: {_quote(described.get('', ''))}, "
        f"column_descriptions: {_quote(columns)}}}"
    )


def _write_dictionary(rows: list[tuple], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["table", "column", "data_type", "description"])
        writer.writerows(rows)


@dataclass
class Publication:
    publication_id: str
    path: Path
    periods: list[str]
    row_counts: dict[str, int]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_symlink(link: Path, target: Path) -> None:
    temporary = link.with_name(f".{link.name}.swap")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(os.path.relpath(target, link.parent))
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)
    os.replace(temporary, link)


def history(settings: Settings) -> list[Path]:
    folder = settings.warehouse / "publications"
    return (
        sorted(p for p in folder.iterdir() if (p / "warehouse.duckdb").exists())
        if folder.exists()
        else []
    )


def current_id(settings: Settings) -> str | None:
    """The publication whose file is ``published.duckdb`` (same inode)."""
    if not settings.published_db.exists():
        return None
    inode = settings.published_db.stat().st_ino
    return next(
        (p.name for p in history(settings) if (p / "warehouse.duckdb").stat().st_ino == inode), None
    )


def _sweep(warehouse: Path) -> None:
    """What a run killed while publishing left: its temporary file, and a publication folder
    that never got its ``warehouse.duckdb`` (so was never published)."""
    for stale in [*warehouse.glob(".published-*.tmp"), *warehouse.glob(".published-*.tmp.wal")]:
        stale.unlink()
    folder = warehouse / "publications"
    for half_made in folder.iterdir() if folder.exists() else []:
        if half_made.is_dir() and not (half_made / "warehouse.duckdb").exists():
            shutil.rmtree(half_made)


def publish(
    settings: Settings,
    run_id: str,
    checks_passed: int,
    checks_warned: int,
    now: dt.datetime | None = None,
) -> Publication:
    now = now or dt.datetime.now(dt.UTC)
    publication_id = f"{now:%Y%m%dT%H%M%S%fZ}-{run_id[:8]}"
    warehouse = settings.warehouse
    folder = warehouse / "publications" / publication_id
    _sweep(warehouse)
    (folder / "parquet").mkdir(parents=True)
    temporary = warehouse / f".published-{publication_id}.tmp"
    with duckdb.connect() as con:
        con.execute(f"attach ? as pub (storage_version '{STORAGE_VERSION}')", [str(temporary)])
        con.execute("use pub")
        con.execute("attach ? as build (read_only)", [str(settings.build_db)])
        for table, order in PUBLISHED_TABLES.items():
            con.execute(
                f"create table {table} as select * from build.marts.{table} order by {order}"
            )
        con.execute(LOG_DDL)
        if settings.published_db.exists():
            con.execute("attach ? as previous (read_only)", [str(settings.published_db)])
            con.execute(
                "insert into publication_log by name select * from previous.publication_log"
            )
            con.execute("detach previous")
        periods = [
            p
            for (p,) in con.execute("select distinct period from fct_poverty order by 1").fetchall()
        ]
        intact, problems = con.execute(
            "select coalesce(bool_and(intact), false), string_agg(array_to_string(problems, '; '))"
            " from build.raw.signoff_log_state"
        ).fetchone()
        con.execute(
            "insert into publication_log values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                publication_id,
                now,
                run_id,
                ",".join(periods),
                checks_passed,
                checks_warned,
                intact,
                problems or None,
            ],
        )
        con.execute("detach build")
        for table in NAMED_VIEWS:
            con.execute(
                f"create view {table}_named as select f.region_code, r.region_name, "
                f"f.* exclude (region_code) from {table} as f "
                "left join dim_region as r on r.region_code = f.region_code"
            )
        descriptions = _descriptions(settings, run_id)
        dictionary = _describe(con, descriptions)
        counts = {}
        for table in [*PUBLISHED_TABLES, "publication_log"]:
            counts[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
            con.execute(
                f"copy {table} to '{folder / 'parquet' / f'{table}.parquet'}' "
                f"(format parquet, kv_metadata {_parquet_metadata(descriptions[table])})"
            )
        _write_dictionary(dictionary, folder / "parquet" / "dictionary.csv")
        con.execute("use memory")
        con.execute("detach pub")  # written out (checkpointed) and closed
    _fsync(temporary)
    os.chmod(temporary, 0o444)
    os.link(temporary, folder / "warehouse.duckdb")
    os.replace(temporary, settings.published_db)  # the atomic step
    _fsync(warehouse)
    _swap_symlink(warehouse / "published", folder / "parquet")
    for old in history(settings)[: -settings.keep_publications]:
        shutil.rmtree(old, ignore_errors=True)
    return Publication(publication_id, settings.published_db, periods, counts)


def point_bulletin(settings: Settings, folder: Path) -> None:
    """``warehouse/bulletin.html`` → the publication's bulletin, swapped atomically."""
    link = settings.warehouse / "bulletin.html"
    target = folder / "bulletin.html"
    if not target.exists():
        link.unlink(missing_ok=True)
        return
    tmp = link.with_name(".bulletin.html.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, link.parent))
    tmp.replace(link)


def rollback(settings: Settings) -> str:
    """Put the publication before the current one back in place; returns its id."""
    publications = history(settings)
    current = current_id(settings)
    names = [p.name for p in publications]
    if current not in names or names.index(current) == 0:
        raise RuntimeError("No earlier publication to roll back to.")
    previous = publications[names.index(current) - 1]
    temporary = settings.warehouse / f".published-rollback-{previous.name}.tmp"
    temporary.unlink(missing_ok=True)
    os.link(previous / "warehouse.duckdb", temporary)
    os.replace(temporary, settings.published_db)
    _fsync(settings.warehouse)
    _swap_symlink(settings.warehouse / "published", previous / "parquet")
    point_bulletin(settings, previous)
    shutil.rmtree(publications[names.index(current)])  # a rolled-back publication is withdrawn
    return previous.name
