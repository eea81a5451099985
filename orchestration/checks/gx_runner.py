"""Run the committed Great Expectations suites (``expectations/*.json``) on the build file.

Every suite is validated in SQL, through GX's SQL datasource on DuckDB (duckdb-engine):
3.9 M person rows take well under a second, where GX on pandas takes about 46 s.

GX releases a SQL connection between metric computation and fetch unless the dialect is
in its private ``_PERSISTED_CONNECTION_DIALECTS``, and DuckDB is not, so every expectation
then fails with ``IndexError`` (GX issues 10738, 11579). :func:`persist_duckdb_connections`
adds DuckDB to that list; GX is pinned exactly in ``pyproject.toml`` and
``tests/test_quality_gate.py`` guards the patch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import PROJECT_ROOT

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
    context = gx.get_context(mode="ephemeral")
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
            validation = batch.validate(suite, result_format={"result_format": "SUMMARY",
                                                              "partial_unexpected_count": FAILURE_SAMPLE})  # fmt: skip
            result = SuiteResult(suite_json["name"], suite_json["meta"]["table"],
                                 suite_json["meta"].get("description", ""), len(validation.results))  # fmt: skip
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


def suites_dir() -> Path:
    """``SATUDATA_EXPECTATIONS_DIR`` overrides the committed suites (same suite names)."""
    return Path(os.environ.get("SATUDATA_EXPECTATIONS_DIR", SUITES_DIR))


# Suites are validated by this many workers at once: GX spends most of its time in Python
# (one core), and the person-level suite alone takes as long as the eight others together.
# One runner process imports GX (2.5 s of CPU) and forks the other workers once the job arrives:
# a second import would cost the same 2.5 s again, on a machine whose cores are busy with dbt.
WORKERS = 2
_warm: list[subprocess.Popen] = []


def _spawn() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", __name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def prewarm() -> None:
    """Start the runner now, so it imports GX while dbt builds.

    It waits on its stdin and opens nothing until :func:`run_suites` hands it the file; if no
    validation follows, it ends with this process (see ``orchestration.child``).
    """
    _warm[:] = [p for p in _warm if p.poll() is None]
    if not _warm:
        _warm.append(_spawn())


def suite_cost(suite: dict, rows: int) -> float:
    """About what a suite costs to validate in SQL: each expectation is a query or two (10-15 ms
    on a mart), and a person-level table adds a few of those per million rows it holds."""
    return len(suite["expectations"]) + rows / 1_000_000


def _share(database: Path, suites: list[dict], parts: int) -> list[list[str]]:
    """Suite names in ``parts`` groups of about equal cost (``suite_cost``), costliest first."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = dict(
            con.execute(
                "select schema_name || '.' || table_name, estimated_size from duckdb_tables()"
            ).fetchall()
        )
    finally:
        con.close()
    costs = {s["name"]: suite_cost(s, rows.get(s["meta"]["table"], 0)) for s in suites}
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(parts)]
    for name in sorted(costs, key=lambda n: -costs[n]):
        load, names = min(groups, key=lambda g: g[0])
        groups.remove((load, names))
        groups.append((load + costs[name], [*names, name]))
    return [names for _, names in groups if names]


def run_suites(database: Path, folder: Path | None = None) -> list[SuiteResult]:
    """Validate every suite in a child process (the prewarmed one when there is one), whose
    workers share the suites (``WORKERS``).

    GX keeps a DuckDB connection (read-only) open for the life of its context; in a child
    process it is surely closed when the child ends, so the build file can be written again.
    Results come back in the order of the suites' files.
    """
    folder = folder or suites_dir()
    suites = load_suites(folder)
    groups = _share(database, suites, WORKERS)
    runners = [p for p in _warm if p.poll() is None]
    _warm.clear()
    runner = runners[0] if runners else _spawn()
    job = {"database": str(database), "folder": str(folder), "groups": groups}
    stdout, stderr = runner.communicate(json.dumps(job))
    if runner.returncode != 0:
        raise RuntimeError(f"Great Expectations runner failed:\n{stderr[-4000:]}")
    by_name = {}
    for raw in json.loads(stdout.strip().splitlines()[-1]):
        failures = [Failure(**f) for f in raw.pop("failures")]
        by_name[raw["name"]] = SuiteResult(**raw, failures=failures)
    return [by_name[s["name"]] for s in suites if s["name"] in by_name]


def _query_rows(database: Path, suites: list[dict]) -> dict[tuple[str, str | None], list]:
    """The first rows each query expectation finds (GX itself only counts them).

    Read before GX opens the file: duckdb-engine opens it with another configuration.
    """
    import duckdb

    rows = {}
    con = duckdb.connect(str(database), read_only=True)
    try:
        for suite in suites:
            for exp in suite["expectations"]:
                if exp["type"] != "unexpected_rows_expectation":
                    continue
                sql = exp["kwargs"]["unexpected_rows_query"].replace(
                    "{batch}", f"(select * from {suite['meta']['table']})"
                )
                try:
                    cursor = con.execute(f"select * from ({sql}) limit {FAILURE_SAMPLE}")
                except duckdb.Error:
                    continue  # GX reports the error itself
                names = [d[0] for d in cursor.description]
                found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
                rows[(suite["name"], exp["meta"].get("notes"))] = _jsonable(found)
    finally:
        con.close()
    return rows


def _validate_group(database: Path, folder: Path, names: list[str]) -> list[dict]:
    suites = [s for s in load_suites(folder) if s["name"] in names]
    rows = _query_rows(database, suites)
    results = validate_suites(database, suites)
    for result in results:
        for failure in result.failures:
            if failure.expectation == "unexpected_rows_expectation":
                failure.sample = rows.get((result.name, failure.notes), failure.sample)
    return [dataclasses.asdict(r) for r in results]


def _fork_worker(work) -> tuple[int, int]:
    """``work()`` in a forked copy of this process (GX already imported); its JSON comes back
    through a pipe. Returns (pid, read end)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        code = 1
        try:
            from orchestration.child import die_with_parent

            die_with_parent()  # (a fork does not inherit its parent's death signal)
            os.close(read)
            with os.fdopen(write, "w") as out:
                json.dump(work(), out, default=str)
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _main() -> int:
    from orchestration.child import started, starting

    starting()
    import great_expectations  # noqa: F401 - the slow import, done before the job arrives

    started()  # (frozen before the workers fork: their copies of it are never written either)

    job = json.loads(sys.stdin.read())
    database, folder = Path(job["database"]), Path(job["folder"])
    first, *others = job["groups"] or [[]]
    workers = [_fork_worker(lambda g=g: _validate_group(database, folder, g)) for g in others]
    results = _validate_group(database, folder, first)
    failed = 0
    for pid, read in workers:
        with os.fdopen(read) as pipe:
            text = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not text:
            failed += 1
            continue
        results += json.loads(text)
    if failed:
        print(f"{failed} Great Expectations worker(s) failed", file=sys.stderr)
        return 1
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    from orchestration.child import die_with_parent, exit_now

    die_with_parent()
    exit_now(_main())
