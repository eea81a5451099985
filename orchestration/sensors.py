"""The landing sensor: a run of the ingestion job whenever a submission is ready."""

import dagster as dg

from .ingest.reader import discover, pending_fingerprint
from .jobs import ingest_job, nightly_job
from .run_status import record_run
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


@dg.run_failure_sensor(
    monitored_jobs=[nightly_job, ingest_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes why a run failed to SATUDATA_HOME/warehouse/last_run.json (shown by `satudata status`).",
)
def record_run_failure(context: dg.RunFailureSensorContext):
    checks = [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for r in context.instance.all_logs(
            context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        if (e := r.dagster_event.event_specific_data)
        and not e.passed
        and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    steps = [e.step_key for e in context.get_step_failure_events() if e.step_key]
    record_run(
        Settings.from_env(),
        context.dagster_run.run_id,
        False,
        steps,
        sorted(checks),
        context.failure_event.message or "",
    )
