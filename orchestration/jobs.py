"""Jobs. Every step runs in one process: the multiprocess executor costs 1–2 s a step."""

from __future__ import annotations

import dagster as dg

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
