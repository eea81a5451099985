"""Jobs. Every step of a run runs in the run's process, one after the other (in-process
executor): the steps share one DuckDB file, which has one writer."""

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
