"""What the last run did, where ``satudata status`` can show it, and clean-up of dead runs."""

from __future__ import annotations

import datetime as dt
import json
import os

from .settings import Settings

PID_TAG = "satudata/pid"


def last_run_path(settings: Settings):
    return settings.warehouse / "last_run.json"


def record_run(settings: Settings, run_id: str, success: bool, failed_steps: list[str],
               blocking_checks: list[str], message: str = "") -> None:  # fmt: skip
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    path = last_run_path(settings)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        json.dumps(
            {
                "run_id": run_id,
                "finished_at": dt.datetime.now(dt.UTC).isoformat(),
                "success": success,
                "failed_steps": failed_steps,
                "blocking_checks": blocking_checks,
                "message": message,
            },
            indent=2,
        )
    )
    os.replace(temporary, path)


def read_last_run(settings: Settings) -> dict | None:
    path = last_run_path(settings)
    return json.loads(path.read_text()) if path.exists() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_runs(instance) -> list[str]:
    """Runs of this machine still 'started' whose process is gone (killed with -9) are failed."""
    import dagster as dg

    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        pid = run.tags.get(PID_TAG)
        if pid and pid.isdigit() and not _alive(int(pid)):
            instance.report_run_failed(run, f"The process {pid} running this run died (killed?).")
            failed.append(run.run_id)
    return failed
