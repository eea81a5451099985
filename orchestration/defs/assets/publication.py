"""Publication asset: audited marts → ``warehouse/published.duckdb`` and Parquet copies."""

import datetime as dt

import dagster as dg
import duckdb

from orchestration.defs.resources import SatudataResource
from orchestration.forum.review import write_review_pages
from orchestration.ingest.store import build_lock, rows
from orchestration.publication.bulletin import build_bulletin
from orchestration.publication.publish import PUBLISHED_TABLES, publish


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


POVERTY_TABLE = dg.TableSchema(
    columns=[
        dg.TableColumn("region_code", "string"),
        dg.TableColumn("region_name", "string"),
        dg.TableColumn("level", "string"),
        dg.TableColumn("period", "string"),
        dg.TableColumn("poverty_rate", "float", description="P0 (%)"),
        dg.TableColumn("poverty_gap_index", "float", description="P1"),
        dg.TableColumn("poverty_severity_index", "float", description="P2"),
        dg.TableColumn("extreme_poverty_rate", "float", description="extreme poverty (%)"),
        dg.TableColumn("reporting_units", "int"),
        dg.TableColumn("expected_units", "int"),
    ]
)
# a publication older than this shows as overdue (the nightly run is every 24 hours)
PUBLICATION_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=36))


@dg.asset(
    key=["publication", "published_warehouse"],
    deps=[dg.AssetKey(["marts", table]) for table in PUBLISHED_TABLES],
    group_name="publication",
    owners=["team:data-engineering"],
    freshness_policy=PUBLICATION_FRESHNESS,
    kinds={"duckdb", "parquet"},
    description="The analysts' read-only warehouse: the contract's tables copied from the audited "
    "marts into a new file that atomically replaces warehouse/published.duckdb, with Parquet "
    "copies under warehouse/published/ and a row in publication_log, and the forum's bulletin "
    "(warehouse/bulletin.html, linked in the metadata). Runs only when every blocking check (dbt "
    "tests, Great Expectations suites) has passed.",
)
def published_warehouse(
    context: dg.AssetExecutionContext, satudata: SatudataResource
) -> dg.MaterializeResult:
    settings = satudata.settings()
    passed, warned = _check_counts(context)
    with build_lock(settings):  # every write of a run, under the one lock
        publication = publish(settings, context.run.run_id, passed, warned)
        bulletin = build_bulletin(settings)
    with duckdb.connect(str(publication.path), read_only=True) as con:
        figures = rows(
            con,
            """
            select p.region_code, r.region_name, p.level, p.period, p.poverty_rate,
                   p.poverty_gap_index, p.poverty_severity_index, p.extreme_poverty_rate,
                   p.reporting_units, p.expected_units
            from fct_poverty p join dim_region r using (region_code)
            where p.level in ('regency', 'province')
            order by p.period, p.level desc, p.region_code
            """,
        )
    latest = max((f["period"] for f in figures), default=None)
    # the latest P0 of the province and each regency as numbers: the Plots tab of the asset
    # shows them across publications
    p0_latest = {
        f"p0_{f['region_code'].replace('.', '_')}": float(f["poverty_rate"])
        for f in figures
        if f["period"] == latest
    }
    return dg.MaterializeResult(
        metadata={
            "publication_id": publication.publication_id,
            "path": dg.MetadataValue.path(str(publication.path)),
            "bulletin": dg.MetadataValue.url(bulletin.path.as_uri()),
            "bulletin_path": dg.MetadataValue.path(str(settings.warehouse / "bulletin.html")),
            "periods": ", ".join(publication.periods),
            "latest_period": latest or "",
            "row_counts": dg.MetadataValue.json(publication.row_counts),
            "checks_passed": passed,
            "checks_warned": warned,
            "poverty_by_regency": dg.MetadataValue.table(
                [dg.TableRecord(f) for f in figures], schema=POVERTY_TABLE
            ),
            **p0_latest,
        }
    )


@dg.asset(
    key=["publication", "review_pages"],
    deps=[published_warehouse],
    group_name="publication",
    owners=["team:data-engineering"],
    kinds={"html"},
    description="The Forum Satu Data's review pages (reports/review/<period>/<region>.html): per "
    "submitting unit, regency and the province, the published figures with their approval "
    "status, each unit's confirmation, sudden changes from the previous period and what pending "
    "revisions would change. Read before satudata confirm / approve.",
)
def review_pages(satudata: SatudataResource) -> dg.MaterializeResult:
    settings = satudata.settings()
    with build_lock(settings):  # a run at the same time writes them too: one after the other
        folder = write_review_pages(settings, settings.published_db)
    pages = sorted(folder.glob("*/*.html"))
    flagged = _flagged(settings)
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(folder)),
            "pages": len(pages),
            "sudden_changes": len(flagged),
            "flagged": dg.MetadataValue.md(
                "\n".join(f"- {line}" for line in flagged) or "No sudden change."
            ),
        }
    )


def _flagged(settings) -> list[str]:
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        rows = con.execute(
            "select region_code, period, issue, change, threshold from fct_data_quality "
            "where issue like 'sudden_change_%' and affected_rows > 0 and level <> 'village' "
            "order by period, region_code, issue"
        ).fetchall()
    return [
        f"{code} {period} {issue}: {change:+.1f} (threshold {limit:g})"
        for code, period, issue, change, limit in rows
    ]
