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
    kwargs: dict = field(default_factory=dict)

    @property
    def rule(self) -> str:
        """The expectation as a person reads it: ``poverty_rate between 0 and 100``."""
        return rule_text(self.expectation, self.kwargs, self.notes)


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
                        kwargs=dict(config.kwargs),
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


KEYS = ("region_code", "unit_code", "level", "period", "program_code", "poverty_status")


def _n(value: object) -> object:
    return f"{value:g}" if isinstance(value, float) else value


def rule_text(expectation: str, kwargs: dict, notes: str | None = None) -> str:
    column = kwargs.get("column")
    match expectation:
        case "expect_column_values_to_not_be_null":
            text = f"{column} is never empty"
        case "expect_column_values_to_be_between":
            low, high = _n(kwargs.get("min_value")), _n(kwargs.get("max_value"))
            text = (
                f"{column} between {low} and {high}"
                if low is not None and high is not None
                else f"{column} >= {low}"
                if low is not None
                else f"{column} <= {high}"
            )
        case "expect_column_values_to_be_in_set":
            text = f"{column} in {kwargs.get('value_set')}"
        case "expect_column_pair_values_a_to_be_greater_than_b":
            sign = ">=" if kwargs.get("or_equal") else ">"
            text = f"{kwargs['column_A']} {sign} {kwargs['column_B']}"
        case "expect_table_row_count_to_equal":
            text = f"exactly {_n(kwargs.get('value'))} rows"
        case "unexpected_rows_expectation":
            text = "no row is returned by: " + " ".join(kwargs["unexpected_rows_query"].split())
        case _:
            text = f"{expectation} {kwargs}"
    return f"{notes}: {text}" if notes else text


def _violations_sql(expectation: str, kwargs: dict) -> str | None:
    """SQL that is true for a row breaking a column expectation (None: not a row rule)."""
    column = f'"{kwargs["column"]}"' if "column" in kwargs else None
    match expectation:
        case "expect_column_values_to_not_be_null":
            return f"{column} is null"
        case "expect_column_values_to_be_between":
            parts = []
            if kwargs.get("min_value") is not None:
                parts.append(f"{column} < {float(kwargs['min_value'])!r}")
            if kwargs.get("max_value") is not None:
                parts.append(f"{column} > {float(kwargs['max_value'])!r}")
            return " or ".join(parts) or None
        case "expect_column_values_to_be_in_set":
            values = ", ".join(
                repr(v) if isinstance(v, int | float) else "'" + str(v).replace("'", "''") + "'"
                for v in kwargs["value_set"]
            )
            return f"{column} not in ({values})"
        case "expect_column_pair_values_a_to_be_greater_than_b":
            a, b = f'"{kwargs["column_A"]}"', f'"{kwargs["column_B"]}"'
            return f"{a} {'<' if kwargs.get('or_equal') else '<='} {b}"
    return None


def _sample_with_keys(con, table: str, failure: Failure) -> list | None:
    """The first rows breaking the failed expectation, with the keys that say which region,
    level and period they are (GX itself gives only the bad values, or only a count)."""
    if failure.expectation == "unexpected_rows_expectation":
        sql = failure.kwargs["unexpected_rows_query"].replace("{batch}", f"(select * from {table})")
        query = f"select * from ({sql}) limit {FAILURE_SAMPLE}"
    else:
        where = _violations_sql(failure.expectation, failure.kwargs)
        if where is None:
            return None
        columns = [r[0] for r in con.execute(f"describe select * from {table}").fetchall()]
        named = [k for k in KEYS if k in columns]
        named += [
            c for c in (failure.kwargs.get(k) for k in ("column", "column_A", "column_B")) if c
        ]
        quoted = ", ".join(f'"{c}"' for c in dict.fromkeys(named))
        query = f"select {quoted} from {table} where {where} limit {FAILURE_SAMPLE}"
    try:
        return _jsonable(rows(con, query))
    except duckdb.Error:
        return None  # GX reported the error itself


def run_suites(database: Path) -> list[SuiteResult]:
    """Validate every suite of ``expectations/`` on ``database``, in the order of the suites'
    files; each failure then carries the first rows that break it, with their keys (read once
    GX has let go of the file: duckdb-engine opens it with another configuration)."""
    suites = load_suites(SUITES_DIR)
    results = validate_suites(database, suites)
    if any(r.failures for r in results):
        with duckdb.connect(str(database), read_only=True) as con:
            for result in results:
                for failure in result.failures:
                    sample = _sample_with_keys(con, result.table, failure)
                    if sample is not None:
                        failure.sample = sample
    return results
