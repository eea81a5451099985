"""What the runs did, read from Dagster's run storage (whoever started them: ``satudata run``,
the UI, the schedule or the sensor), and clean-up of runs whose process died."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import dagster as dg

PID_TAG = "satudata/pid"
PIPELINE_JOBS = ("nightly", "ingest")
KEY_ORDER = ["region_code", "unit_code", "level", "period", "program_code", "poverty_status"]
_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dataclass
class RunSummary:
    state: str  # succeeded | FAILED | CANCELED
    finished_at: dt.datetime
    launched_by: str
    blocking_checks: list[str]
    failures: list[str]  # "<step>: <error>" per failed step
    # per blocking check: each rule it broke and up to ten rows that break it, with their keys
    check_details: dict[str, list[str]] = field(default_factory=dict)


def last_run(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """The pipeline's latest finished run."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=None, statuses=_FINISHED), limit=50)
    return next((r for r in runs if r.job_name in PIPELINE_JOBS), None)


def _launched_by(run: dg.DagsterRun) -> str:
    tags = run.tags
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags:
        return f"sensor {tags['dagster/sensor_name']}"
    if PID_TAG in tags:
        return "satudata run"
    return "Dagster UI"


def describe(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunSummary:
    """How ``run`` ended: blocking checks that failed and steps that failed, from its events."""
    records = instance.all_logs(run.run_id)
    blocking, failures, details = set(), [], {}
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.event_specific_data
            if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
                name = f"{check.asset_key.to_user_string()}:{check.check_name}"
                blocking.add(name)
                details[name] = _broken_rules(check.metadata.get("failures"))
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            explained = getattr(event.event_specific_data, "user_failure_data", None)
            if explained is not None and explained.description:  # a dg.Failure says what broke
                failures.append(f"{event.step_key}: {explained.description.strip()}")
                continue
            error = getattr(event.event_specific_data, "error", None)
            while error is not None and error.cause is not None:  # the error the step raised
                error = error.cause
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # the blocking checks, said above with their rules
            failures.append(
                f"{event.step_key}: {error.message.strip() if error else record.message}"
            )
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE and not failures and not blocking:
            failures.append(record.message or event.message or "run failed")
    stats = instance.get_run_stats(run.run_id)
    finished = dt.datetime.fromtimestamp(stats.end_time or records[-1].timestamp, dt.UTC)
    state = {dg.DagsterRunStatus.SUCCESS: "succeeded", dg.DagsterRunStatus.FAILURE: "FAILED"}
    return RunSummary(
        state.get(run.status, run.status.value),
        finished,
        _launched_by(run),
        sorted(blocking),
        failures,
        details,
    )


def _broken_rules(failures: dg.MetadataValue | None) -> list[str]:
    """Lines for a person: each ERROR rule a check broke, then up to ten rows breaking it."""
    lines = []
    for failure in getattr(failures, "value", None) or []:
        if failure.get("severity") != "ERROR":
            continue
        count = failure.get("unexpected_count")
        lines.append(f"{failure.get('rule')}" + (f" ({count} rows)" if count else ""))
        for row in (failure.get("failing_rows_or_values") or [])[:10]:
            if isinstance(row, dict):  # the keys first: which region, level and period
                order = sorted(row, key=lambda k: KEY_ORDER.index(k) if k in KEY_ORDER else 9)
                lines.append("    " + ", ".join(f"{k}={row[k]}" for k in order))
            else:
                lines.append(f"    {row}")
        if failure.get("error"):
            lines.append(f"    error: {failure['error']}")
    return lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Runs of ``satudata run`` still 'started' whose process is gone (killed) are failed."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        pid = run.tags.get(PID_TAG)
        if pid and pid.isdigit() and not _alive(int(pid)):
            instance.report_run_failed(run, f"The process {pid} running this run died (killed?).")
            failed.append(run.run_id)
    return failed
