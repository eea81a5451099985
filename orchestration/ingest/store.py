"""The build DuckDB file: its raw schema, the one-writer lock around it, and reading rows."""

from __future__ import annotations

import csv
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from orchestration.settings import SEEDS_DIR, Settings

RAW_SCHEMA = (Path(__file__).parent / "raw.sql").read_text()


@contextmanager
def build_lock(settings: Settings) -> Iterator[None]:
    """DuckDB has one writer: every writer of build.duckdb holds this lock.

    An OS file lock, so a writer killed with -9 releases it with its process.
    """
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    with open(settings.warehouse / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def connect_build(settings: Settings) -> duckdb.DuckDBPyConnection:
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    new = not settings.build_db.exists()
    try:
        con = duckdb.connect(str(settings.build_db))
    except duckdb.Error:
        if new:  # a file begun on a full disk is no database: the next run begins it again
            for path in (settings.build_db, settings.build_db.with_name("build.duckdb.wal")):
                path.unlink(missing_ok=True)
        raise
    con.execute("set preserve_insertion_order = true")
    con.execute(f"set memory_limit = '{settings.memory_limit}'")
    tmp = settings.home / "tmp" / "duckdb"
    tmp.mkdir(parents=True, exist_ok=True)
    con.execute(f"set temp_directory = '{tmp}'")
    con.execute(RAW_SCHEMA)
    return con


def read_reference_csv(name: str, seeds: Path = SEEDS_DIR) -> list[dict[str, str]]:
    with open(seeds / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def submitting_units(seeds: Path = SEEDS_DIR) -> dict[str, str]:
    """unit_code -> unit_name, from the reference data (not code)."""
    return {
        row["unit_code"]: row["unit_name"]
        for row in read_reference_csv("submitting_units.csv", seeds)
    }


def install_reference(con: duckdb.DuckDBPyConnection, seeds: Path = SEEDS_DIR) -> None:
    """Temp tables of villages and program codes, read from the dbt seeds."""
    con.execute(
        "create or replace temp table ref_villages as select kode as code from "
        "read_csv($p, all_varchar=true, header=true) where level = 'desa_kelurahan'",
        {"p": str(seeds / "kaltim_regions.csv")},
    )
    con.execute(
        "create or replace temp table ref_programs as select program_code as code from "
        "read_csv($p, all_varchar=true, header=true)",
        {"p": str(seeds / "programs.csv")},
    )


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[dict]:
    """The result of ``sql`` as one dict per row, keyed by column name."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
