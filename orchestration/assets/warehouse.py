"""The dbt models as Dagster assets: one lineage from the raw tables to the marts.

dbt sources ``raw.<table>`` map to the ingestion assets' keys ``raw/<table>``; groups and
owners come from dbt ``meta`` (dbt_project.yml); dbt tests show as asset checks.
"""

import shutil
from pathlib import Path

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from ..checks.gx_runner import prewarm
from ..dbt_project import dbt_project
from ..ingest.store import build_lock
from ..resources import SatudataResource

KEEP_DBT_RUNS = 10

dbt_project.prepare_if_dev()  # `dagster dev` only: parse when the UI starts

if not Path(dbt_project.manifest_path).exists():
    raise FileNotFoundError(
        f"No dbt manifest at {dbt_project.manifest_path}: run `make install` (or `satudata prepare`) first."
    )

translator = DagsterDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=dbt_project.manifest_path, dagster_dbt_translator=translator, name="warehouse_models"
)
def warehouse_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, satudata: SatudataResource
):
    """``dbt build``: seeds, models, data tests and unit tests, streamed as Dagster events.

    dbt's target folder and logs of each run go below ``SATUDATA_HOME/dbt/runs/``.
    """
    settings = satudata.settings()
    runs = settings.home / "dbt" / "runs"
    target = runs / context.run.run_id
    prewarm()  # the GX runner imports GX while dbt builds; the checks that follow use it
    with build_lock(settings):  # one writer of build.duckdb, whichever run it belongs to
        yield from dbt.cli(["build"], context=context, target_path=target).stream()
    for old in sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_DBT_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
