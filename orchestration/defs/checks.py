"""The Great Expectations suites as Dagster asset checks on the tables they validate: per
suite, a blocking check of its ERROR expectations (``gx_<suite>``: a failure stops the
publication) and, when it has WARN ones, a non-blocking check of those
(``gx_<suite>_warnings``: recorded, shown as a warning, never under "blocking")."""

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


def _has_warnings(suite: dict) -> bool:
    return any(e.get("meta", {}).get("severity") == "WARN" for e in suite["expectations"])


def _result(result, failures, severity: str, name: str) -> dg.AssetCheckResult:
    listed = [
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
        for f in failures
    ]
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=_asset_key(result.table),
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR if severity == "ERROR" else dg.AssetCheckSeverity.WARN,
        metadata={
            "expectations_evaluated": result.evaluated,
            "failed": len(failures),
            "failures": dg.MetadataValue.json(listed),
            **_failing_rows(failures),
        },
    )


def great_expectations_checks() -> dg.AssetChecksDefinition:
    """Per committed suite a blocking check (ERROR rules) and a warning check (WARN rules),
    validated together in one step."""
    suites = load_suites(SUITES_DIR)
    specs = []
    for suite in suites:
        about = f"Great Expectations suite expectations/{suite['name']}.json: " + suite["meta"].get(
            "description", ""
        )
        asset = _asset_key(suite["meta"]["table"])
        specs.append(
            dg.AssetCheckSpec(
                name=f"gx_{suite['name']}", asset=asset, blocking=True, description=about
            )
        )
        if _has_warnings(suite):
            specs.append(
                dg.AssetCheckSpec(
                    name=f"gx_{suite['name']}_warnings",
                    asset=asset,
                    blocking=False,
                    description=f"{about} (its WARN rules: recorded, never blocking)",
                )
            )
    warned_suites = {s["name"] for s in suites if _has_warnings(s)}

    @dg.multi_asset_check(specs=specs, can_subset=False, name="great_expectations_suites")
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
            yield _result(result, result.errors, "ERROR", f"gx_{result.name}")
            if result.name in warned_suites:
                yield _result(result, result.warnings, "WARN", f"gx_{result.name}_warnings")

    return great_expectations_suites
