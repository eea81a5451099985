"""Jobs. Every step of a run runs in the run's process, one after the other (in-process
executor): the steps share one DuckDB file, which has one writer."""

from enum import Enum

import dagster as dg
from pydantic import Field

from orchestration.defs.assets.forum import SIGNOFFS
from orchestration.defs.resources import SatudataResource
from orchestration.forum import signoff

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.groups("ingestion"),
    executor_def=dg.in_process_executor,
    description="Ingest the ready submissions of landing/ into the build DuckDB file.",
)

nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="The nightly run: ingest, then everything downstream.",
)


Action = Enum("Action", {action: action for action in signoff.ACTIONS})


class SignoffConfig(dg.Config):
    """One decision of the Forum Satu Data (orchestration/forum/signoff.py), as in the launchpad."""

    action: Action = Field(
        description="confirm | withdraw (a unit's submission) | approve | unlock (a region)"
    )
    region_code: str = Field(
        description="The submitting unit (confirm, withdraw), e.g. 64.74.01, or the region "
        "(approve, unlock): a regency, e.g. 64.74, or the province, 64."
    )
    period: str = Field(description="YYYY-MM")
    decided_by: str = Field(description="Who decides: name and office (recorded, published).")
    note: str = Field(default="", description="A note; the reason, required to withdraw or unlock.")


@dg.op(
    description="Records one sign-off decision (confirm, withdraw, approve, unlock) after "
    "checking it; a refused decision fails the run with its reason and records nothing."
)
def record_signoff(
    context: dg.OpExecutionContext, config: SignoffConfig, satudata: SatudataResource
) -> dg.Output[str]:
    try:
        decision = signoff.decide(
            satudata.settings(),
            config.action.value,
            config.region_code,
            config.period,
            config.decided_by,
            config.note,
        )
    except signoff.SignoffError as exc:
        raise dg.Failure(description=f"Ditolak: {exc.indonesian}\nRefused: {exc.english}") from None
    context.log.info(f"Recorded {decision.action} of {decision.region_code} {decision.period}")
    context.log_event(
        dg.AssetMaterialization(
            SIGNOFFS.key,
            description=f"{decision.action} {decision.region_code} {decision.period}",
            metadata={"decision_id": decision.decision_id, "decided_by": decision.decided_by},
        )
    )
    return dg.Output(
        decision.decision_id,
        metadata={
            "action": decision.action,
            "region_code": decision.region_code,
            "period": decision.period,
            "decided_by": decision.decided_by,
            "note": decision.note or "",
            "publication_id": decision.publication_id or "",
            "submission_ids": ", ".join(decision.submission_ids),
            "figures_digest": decision.figures_digest or "",
        },
    )


@dg.job(
    name="signoff",
    description="The Forum Satu Data's sign-off: a unit confirms its submission, the walidata "
    "approves (and locks) a region's figures, withdraws a confirmation or unlocks with a reason. "
    "Fill in the config in the launchpad. A successful decision starts the nightly job, so the "
    "published warehouse shows it.",
)
def signoff_job():
    record_signoff()
