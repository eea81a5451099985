"""Ingestion assets: landing → archive → validation → raw tables of the build file."""

from collections import Counter

import dagster as dg
import duckdb

from orchestration.defs.resources import SatudataResource
from orchestration.faults import MachineFault
from orchestration.ingest.pipeline import Ingestor
from orchestration.ingest.store import build_lock

RAW_TABLES = {
    "submissions": "The submission register: one row per submission received (unit, period, "
    "dikirim_pada, status accepted / superseded / quarantined, counts, report path).",
    "households": "Accepted keluarga rows; No. KK and NIK replaced by HMAC pseudonyms, names dropped.",
    "members": "Accepted anggota rows; NIK and No. KK pseudonymised, names dropped.",
    "receipts": "Accepted bantuan rows (social-assistance receipts), pseudonymised.",
    "rejects": "Every rejected (row, column): line, value (personal data pseudonymised), reason code.",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dg.AssetKey(["raw", name]),
            description=description,
            group_name="ingestion",
            owners=["team:data-engineering"],
            kinds={"duckdb", "python"},
            skippable=True,
        )
        for name, description in RAW_TABLES.items()
    ],
    can_subset=False,
)
def raw_submissions(context: dg.AssetExecutionContext, satudata: SatudataResource):
    """Ingest every ready submission in ``landing/``: archive its bytes (SHA-256), validate
    every row against the submission contract, load accepted rows (pseudonymised) into
    ``warehouse/build.duckdb``, quarantine what cannot be trusted, write operator reports."""
    settings = satudata.settings()
    try:
        outcomes = Ingestor(settings).run()
    except MachineFault as fault:  # said plainly, as every explained failure of a step is
        raise dg.Failure(description=str(fault)) from fault
    by_status = Counter(o.status for o in outcomes)
    for outcome in outcomes:
        context.log.info(
            f"{outcome.landing_name}: {outcome.status}"
            + (f" ({outcome.reason_code}: {outcome.detail})" if outcome.reason_code else "")
            + (f", report {outcome.report_path}" if outcome.report_path else "")
        )
    summary = {
        "submissions_processed": len(outcomes),
        **{f"submissions_{status}": count for status, count in sorted(by_status.items())},
        "reports": dg.MetadataValue.json(
            [
                {"landing": o.landing_name, "status": o.status, "report": o.report_path}
                for o in outcomes
            ]
        ),
    }
    with build_lock(settings):
        counts = _row_counts(settings.build_db)
    for name in RAW_TABLES:
        metadata = {**summary, "dagster/row_count": counts.get(name, 0)}
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["raw", name]), metadata=metadata)


def _row_counts(build_db) -> dict[str, int]:
    if not build_db.exists():
        return {}
    with duckdb.connect(str(build_db), read_only=True) as con:
        return {
            name: con.execute(f"select count(*) from raw.{name}").fetchone()[0]
            for name in RAW_TABLES
        }
