"""The Forum Satu Data's tables in the build file, as assets: the decisions (written by the
``signoff`` job), what is in force, and the log's verification before each warehouse build."""

import dagster as dg

from orchestration.defs.resources import SatudataResource
from orchestration.forum import signoff
from orchestration.ingest.store import build_lock

# raw.signoffs: written by the signoff job (not materialized by a run of assets), read by dbt
SIGNOFFS = dg.AssetSpec(
    ["raw", "signoffs"],
    group_name="forum",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
    description="The Forum Satu Data's decisions (raw.signoffs in the build file, append-only; "
    "raw.signoffs_in_force says what holds): recorded by the signoff job or satudata "
    "confirm/withdraw/approve/unlock.",
)
SIGNOFFS_IN_FORCE = dg.AssetSpec(
    ["raw", "signoffs_in_force"],
    deps=[SIGNOFFS],
    group_name="forum",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
    description="The confirmations and approvals in force: a view of raw.signoffs "
    "(orchestration/ingest/store.py), read by sign-off, ingestion (locks) and dbt.",
)
LOG_INTACT = "signoff_log_intact"


@dg.asset(
    key=["raw", "signoff_log_state"],
    deps=[SIGNOFFS],
    group_name="forum",
    kinds={"duckdb", "python"},
    owners=["team:data-engineering"],
    check_specs=[
        dg.AssetCheckSpec(
            LOG_INTACT,
            asset=["raw", "signoff_log_state"],
            description="Every decision of the sign-off log is as recorded: its id is the hash "
            "of its fields and the decision before it is there. When not, no decision can be "
            "recorded and the night publishes every figure as provisional, until the log is "
            "restored from a backup.",
        )
    ],
    description="The sign-off log verified before each warehouse build (raw.signoff_log_state): "
    "the warehouse publishes confirmations and approvals only from a log found intact.",
)
def signoff_log_state(satudata: SatudataResource):
    settings = satudata.settings()
    with build_lock(settings):
        state = signoff.record_log_state(settings)
    problems = "\n".join(f"- {problem}" for problem in state.problems)
    yield dg.MaterializeResult(
        metadata={"decisions": state.decisions, "intact": state.intact},
        check_results=[
            dg.AssetCheckResult(
                check_name=LOG_INTACT,
                passed=state.intact,
                severity=dg.AssetCheckSeverity.WARN,
                description=None
                if state.intact
                else "The sign-off log is NOT INTACT: approvals are not published (every figure "
                "provisional) and no decision can be recorded until it is restored from a backup.",
                metadata={"decisions": state.decisions, "problems": dg.MetadataValue.md(problems)},
            )
        ],
    )
