"""Run the committed Great Expectations suites (``expectations/*.json``) on the build file.

Every suite is validated in SQL, through GX's SQL datasource on DuckDB (duckdb-engine):
set-based, so a province's person rows are checked without loading them into Python.

GX releases a SQL connection between metric computation and fetch unless the dialect is
in its private ``_PERSISTED_CONNECTION_DIALECTS``, and DuckDB is not, so every expectation
then fails with ``IndexError`` (GX issues 10738, 11579). :func:`persist_duckdb_connections`
adds DuckDB to that list; GX is pinned exactly in ``pyproject.toml`` and
``tests/test_quality_gate.py`` guards the patch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.ingest.store import rows
from orchestration.settings import PROJECT_ROOT

SUITES_DIR = PROJECT_ROOT / "expectations"
FAILURE_SAMPLE = 20


class _DuckDBDialect:
    """Stands for DuckDB in GX's tuple of GXSqlDialect members (compared by value)."""

    value = "duckdb"

    def __eq__(self, other: object) -> bool:
        return str(getattr(other, "value", other)).lower() == "duckdb"

    def __hash__(self) -> int:
        return hash("duckdb")


def persist_duckdb_connections() -> None:
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    dialects = engine._PERSISTED_CONNECTION_DIALECTS  # noqa: SLF001 - see module docstring
    if not any(d == "duckdb" for d in dialects):
        engine._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DuckDBDialect())  # noqa: SLF001


@dataclass
class Failure:
    expectation: str
    severity: str
    column: str | None
    notes: str | None
    unexpected_count: int | None
    sample: list
    observed_value: object = None
    exception: str | None = None


@dataclass
class SuiteResult:
    name: str
    table: str
    description: str
    evaluated: int
    failures: list[Failure] = field(default_factory=list)

    @property
    def errors(self) -> list[Failure]:
        return [f for f in self.failures if f.severity == "ERROR"]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.severity != "ERROR"]

    @property
    def passed(self) -> bool:
        return not self.failures


def load_suites(folder: Path = SUITES_DIR) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _jsonable(value: object) -> object:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return json.loads(json.dumps(value, default=str))


def validate_suites(database: Path, suites: list[dict]) -> list[SuiteResult]:
    """Validate each suite against ``meta.table`` of the DuckDB file, opened read-only."""
    import great_expectations as gx

    persist_duckdb_connections()
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(
        "build",
        connection_string=f"duckdb:///{database}",
        kwargs={"connect_args": {"read_only": True}},
    )
    results = []
    try:
        for suite_json in suites:
            # a query asset: GX's column reflection drops the schema of a table asset
            asset = source.add_query_asset(
                suite_json["name"], query=f"select * from {suite_json['meta']['table']}"
            )
            batch = asset.add_batch_definition_whole_table("all").get_batch()
            suite = gx.ExpectationSuite(**{k: v for k, v in suite_json.items() if k != "meta"})
            validation = batch.validate(
                suite,
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": FAILURE_SAMPLE,
                },
            )
            result = SuiteResult(
                suite_json["name"],
                suite_json["meta"]["table"],
                suite_json["meta"].get("description", ""),
                len(validation.results),
            )
            for outcome in validation.results:
                if outcome.success:
                    continue
                config = outcome.expectation_config
                meta = config.meta or {}
                details = outcome.result or {}
                sample = (
                    details.get("partial_unexpected_list")
                    or details.get("details", {}).get("unexpected_rows")
                    or []
                )
                exception = _exception_message(outcome.exception_info)
                result.failures.append(
                    Failure(
                        expectation=config.type,
                        severity=meta.get("severity", "ERROR"),
                        column=config.kwargs.get("column"),
                        notes=meta.get("notes"),
                        unexpected_count=details.get("unexpected_count"),
                        sample=_jsonable(list(sample)[:FAILURE_SAMPLE]),
                        observed_value=_jsonable(details.get("observed_value")),
                        exception=exception,
                    )
                )
            results.append(result)
    finally:
        # close the file in this process: the datasource's own engine (which tested the
        # connection) and the validations' one each hold a connection
        source.get_engine().dispose()
        source.get_execution_engine().engine.dispose()
    return results


def _exception_message(info: dict | None) -> str | None:
    """GX nests exception info per metric; the first message is enough to act on."""
    if not info:
        return None
    if "exception_message" in info:
        return info["exception_message"] if info.get("raised_exception") else None
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return nested.get("exception_message")
    return None


def _query_rows(database: Path, suites: list[dict]) -> dict[tuple[str, str | None], list]:
    """The first rows each query expectation finds (GX itself only counts them).

    Read before GX opens the file: duckdb-engine opens it with another configuration.
    """
    found = {}
    with duckdb.connect(str(database), read_only=True) as con:
        for suite in suites:
            for exp in suite["expectations"]:
                if exp["type"] != "unexpected_rows_expectation":
                    continue
                sql = exp["kwargs"]["unexpected_rows_query"].replace(
                    "{batch}", f"(select * from {suite['meta']['table']})"
                )
                try:
                    sample = rows(con, f"select * from ({sql}) limit {FAILURE_SAMPLE}")
                except duckdb.Error:
                    continue  # GX reports the error itself
                found[(suite["name"], exp["meta"].get("notes"))] = _jsonable(sample)
    return found


def run_suites(database: Path) -> list[SuiteResult]:
    """Validate every suite of ``expectations/`` on ``database``, in the
    order of the suites' files; a failing query expectation carries the rows it found."""
    suites = load_suites(SUITES_DIR)
    rows = _query_rows(database, suites)
    results = validate_suites(database, suites)
    for result in results:
        for failure in result.failures:
            if failure.expectation == "unexpected_rows_expectation":
                failure.sample = rows.get((result.name, failure.notes), failure.sample)
    return results
