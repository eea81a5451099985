"""Sensors: the landing sensor (a run of the ingestion job whenever a submission is ready),
failure e-mails, and a nightly run after a sign-off decision."""

import dagster as dg

from orchestration.defs.alerts import failure_message, send
from orchestration.defs.jobs import ingest_job, nightly_job, signoff_job
from orchestration.defs.runs import describe
from orchestration.ingest.landing import discover, pending_fingerprint
from orchestration.settings import Settings


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
    description="E-mails the engineers when a run of the pipeline fails: the SMTP server and "
    "addresses in SATUDATA_ALERT_* (off when SATUDATA_ALERT_SMTP_HOST is not set).",
)
def email_on_run_failure(context: dg.RunFailureSensorContext):
    settings = Settings.from_env()
    if settings.alerts is None:
        return dg.SkipReason("alerts are off: SATUDATA_ALERT_SMTP_HOST / SATUDATA_ALERT_TO not set")
    run = context.dagster_run
    summary = describe(context.instance, run)
    message = failure_message(settings.alerts, run.job_name, run.run_id, summary, settings.ui_url)
    send(settings.alerts, message)
    return None


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[signoff_job],
    request_job=nightly_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a sign-off decision taken in the UI, runs the nightly job so that the "
    "published warehouse shows it (approval status, released revisions, the sign-off log).",
)
def publish_after_signoff(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=context.dagster_run.run_id)
