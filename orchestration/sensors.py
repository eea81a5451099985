"""The landing sensor: a run of the ingestion job whenever a submission is ready."""

import dagster as dg

from .ingest.landing import discover, pending_fingerprint
from .jobs import ingest_job
from .settings import Settings


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches SATUDATA_HOME/landing for complete submissions (a folder with "
    "manifest.json, or a complete .zip) and starts the ingestion job.",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    landing = Settings.from_env().landing
    ready = discover(landing)
    if not ready:
        return dg.SkipReason(f"no complete submission in {landing}")
    return dg.RunRequest(
        run_key=pending_fingerprint(landing),
        tags={"satudata/submissions": ",".join(p.name for p in ready)[:1000]},
    )
