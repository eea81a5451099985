"""The Great Expectations suites as blocking Dagster asset checks: one check per suite,
on the table it validates. ERROR expectations block publication; WARN ones are recorded."""

import dagster as dg

from orchestration.checks.expectations import SUITES_DIR, load_suites, run_suites
from orchestration.defs.resources import SatudataResource
from orchestration.ingest.store import build_lock


def _asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def _failing_rows(failures) -> dict[str, dg.MetadataValue]:
    """The rows (or values) each failed expectation found, as tables in the check's metadata."""
    tables = {}
    for number, failure in enumerate(failures, start=1):
        rows = [r if isinstance(r, dict) else {"value": r} for r in failure.sample]
        if not rows:
            continue
        label = f"{failure.severity} {failure.rule}"
        columns = list(dict.fromkeys(k for row in rows for k in row))
        tables[f"failing rows {number}: {label}"[:120]] = dg.MetadataValue.table(
            [dg.TableRecord({k: _plain(row.get(k)) for k in columns}) for row in rows],
            schema=dg.TableSchema(columns=[dg.TableColumn(k, "string") for k in columns]),
        )
    return tables


def _plain(value: object) -> str | None:
    return None if value is None else str(value)


def great_expectations_checks() -> dg.AssetChecksDefinition:
    """One blocking check per committed suite, validated together in one step."""
    suites = load_suites(SUITES_DIR)

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                name=f"gx_{suite['name']}",
                asset=_asset_key(suite["meta"]["table"]),
                blocking=True,
                description=f"Great Expectations suite expectations/{suite['name']}.json: "
                + suite["meta"].get("description", ""),
            )
            for suite in suites
        ],
        can_subset=False,
        name="great_expectations_suites",
    )
    def great_expectations_suites(
        context: dg.AssetCheckExecutionContext, satudata: SatudataResource
    ):
        """Validate every suite in SQL on the build file (orchestration/checks/expectations.py)."""
        settings = satudata.settings()
        with build_lock(settings):  # no writer while the suites read
            results = run_suites(settings.build_db)
        missing = {s["name"] for s in suites} - {r.name for r in results}
        if missing:  # a suite that did not run must not look like a check that passed
            raise dg.Failure(f"Great Expectations suites did not run: {', '.join(sorted(missing))}")
        for result in results:
            failures = [
                {
                    "rule": f.rule,
                    "expectation": f.expectation,
                    "severity": f.severity,
                    "column": f.column,
                    "notes": f.notes,
                    "unexpected_count": f.unexpected_count,
                    "observed_value": f.observed_value,
                    "failing_rows_or_values": f.sample,
                    "error": f.exception,
                }
                for f in result.failures
            ]
            yield dg.AssetCheckResult(
                check_name=f"gx_{result.name}",
                asset_key=_asset_key(result.table),
                passed=result.passed,
                severity=dg.AssetCheckSeverity.ERROR
                if result.errors
                else dg.AssetCheckSeverity.WARN,
                metadata={
                    "expectations_evaluated": result.evaluated,
                    "errors": len(result.errors),
                    "warnings": len(result.warnings),
                    "failures": dg.MetadataValue.json(failures),
                    **_failing_rows(result.failures),
                },
            )

    return great_expectations_suites
