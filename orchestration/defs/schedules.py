"""The nightly schedule, in the offices' own time zone (WITA)."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.jobs import nightly_job

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_0200_wita",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Makassar",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night at 02:00 Asia/Makassar (WITA).",
)
