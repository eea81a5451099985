"""The dbt models as Dagster assets: one lineage from the raw tables to the marts.

dbt sources ``raw.<table>`` map to the ingestion assets' keys ``raw/<table>``; groups and
owners come from dbt ``meta`` (dbt_project.yml); dbt tests show as asset checks.
"""

import shutil
from pathlib import Path

import dagster as dg
import pydantic
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from ..checks.gx_runner import prewarm
from ..child import parse_state
from ..dbt_project import dbt_project
from ..ingest.store import build_lock
from ..resources import SatudataResource

KEEP_DBT_RUNS = 10
# Unit tests check the SQL on static inputs, not the night's data: dbt recommends running them
# in development and CI only, and the test suite does (tests/test_warehouse_known_answers.py).
# Left out, the nightly build saves about 1 s of its 5 s of fixed dbt work.
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]

dbt_project.prepare_if_dev()  # `dagster dev` only: parse when the UI starts

if not Path(dbt_project.manifest_path).exists():
    raise FileNotFoundError(
        f"No dbt manifest at {dbt_project.manifest_path}: run `make install` (or `satudata prepare`) first."
    )

translator = DagsterDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class WarehouseConfig(dg.Config):
    full_refresh: bool = pydantic.Field(
        default=False,
        description="Rebuild the incremental models from all latest submissions (dbt "
        "--full-refresh). Needed only after changing a macro they call: changed models, seeds "
        "and revisions are picked up without it (dbt_project/macros/incremental.sql).",
    )


@dbt_assets(
    manifest=dbt_project.manifest_path, dagster_dbt_translator=translator, name="warehouse_models"
)
def warehouse_models(
    context: dg.AssetExecutionContext,
    config: WarehouseConfig,
    dbt: DbtCliResource,
    satudata: SatudataResource,
):
    """``dbt build``: seeds, models and data tests (unit tests run in CI), streamed as Dagster
    events.

    dbt's target folder and logs of each run go below ``SATUDATA_HOME/dbt/runs/``.
    """
    settings = satudata.settings()
    runs = settings.home / "dbt" / "runs"
    target = runs / context.run.run_id
    # dbt's partial-parse state: the one prepared with the project serves every home (dbt runs
    # from the data root, see ``child.run_from_home``). A home keeps its own too, for when its
    # rendered profile differs from the prepared one (another SATUDATA_DUCKDB_MEMORY_LIMIT):
    # dbt would re-parse every run. ``child.parse_state`` picks the newer of the two, so a
    # project prepared after a code change wins. (The standby dbt parses with it during
    # ingestion; this copy serves a dbt that parses when it is asked.)
    state = parse_state(settings.home)
    target.mkdir(parents=True, exist_ok=True)
    handed = None
    if state.exists():
        shutil.copyfile(state, target / state.name)
        handed = (target / state.name).stat().st_mtime_ns
    prewarm()  # unless `satudata run` started it: the GX runner imports GX while dbt builds
    with build_lock(settings):  # one writer of build.duckdb, whichever run it belongs to
        args = [*BUILD_ARGS, "--full-refresh"] if config.full_refresh else BUILD_ARGS
        yield from dbt.cli(args, context=context, target_path=target).stream()
    written = target / state.name
    if written.exists() and written.stat().st_mtime_ns != handed:  # dbt parsed: keep its state
        shutil.copyfile(written, state.with_suffix(".tmp"))
        state.with_suffix(".tmp").replace(state)
    for old in sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_DBT_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
