"""Publication asset: audited marts → ``warehouse/published.duckdb`` and Parquet copies."""

import dagster as dg
import duckdb

from ..ingest.store import build_lock
from ..publish import PUBLISHED_TABLES, publish
from ..resources import SatudataResource


def _check_counts(context: dg.AssetExecutionContext) -> tuple[int, int]:
    """Checks of this run (dbt tests and GX suites): passed, and failed with WARN severity."""
    records = context.instance.all_logs(
        context.run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    )
    evaluations = [r.dagster_event.event_specific_data for r in records]
    passed = sum(1 for e in evaluations if e.passed)
    warned = sum(
        1 for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    )
    return passed, warned


def _markdown(columns: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@dg.asset(
    key=["publication", "published_warehouse"],
    deps=[dg.AssetKey(["marts", table]) for table in PUBLISHED_TABLES],
    group_name="publication",
    owners=["team:data-engineering"],
    kinds={"duckdb", "parquet"},
    description="The analysts' read-only warehouse: the contract's tables copied from the audited "
    "marts into a new file that atomically replaces warehouse/published.duckdb, with Parquet "
    "copies under warehouse/published/ and a row in publication_log. Runs only when every "
    "blocking check (dbt tests, Great Expectations suites) has passed.",
)
def published_warehouse(
    context: dg.AssetExecutionContext, satudata: SatudataResource
) -> dg.MaterializeResult:
    settings = satudata.settings()
    passed, warned = _check_counts(context)
    with build_lock(settings):
        publication = publish(settings, context.run.run_id, passed, warned)
    con = duckdb.connect(str(publication.path), read_only=True)
    try:
        by_regency = con.execute(
            """
            select p.region_code, r.region_name, p.period, round(p.poverty_rate, 2) as p0,
                   p.reporting_units || '/' || p.expected_units as units
            from fct_poverty p join dim_region r using (region_code)
            where p.level in ('regency', 'province') and p.period = (select max(period) from fct_poverty)
            order by p.region_code
            """
        ).fetchall()
        cursor = con.execute(
            "select * from fct_poverty where level = 'regency' order by region_code limit 10"
        )
        columns = [d[0] for d in cursor.description]
        preview_rows = cursor.fetchall()
    finally:
        con.close()
    table = _markdown(["region", "name", "period", "P0 (%)", "units"], by_regency)
    return dg.MaterializeResult(
        metadata={
            "publication_id": publication.publication_id,
            "path": dg.MetadataValue.path(str(publication.path)),
            "periods": ", ".join(publication.periods),
            "row_counts": dg.MetadataValue.json(publication.row_counts),
            "checks_passed": passed,
            "checks_warned": warned,
            "p0_by_regency": dg.MetadataValue.md(table),
            "preview_fct_poverty": dg.MetadataValue.md(_markdown(columns, preview_rows)),
        }
    )
