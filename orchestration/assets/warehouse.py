"""The dbt models as Dagster assets: one lineage from the raw tables to the marts.

dbt sources ``raw.<table>`` map to the ingestion assets' keys ``raw/<table>``; groups and
owners come from dbt ``meta`` (dbt_project.yml); dbt tests show as asset checks.
"""

import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import dagster as dg
import pydantic
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    dbt_assets,
)

from ..dbt_project import dbt_project, prepare_if_dev
from ..ingest.store import build_lock
from ..launcher import PARENT_ENV
from ..resources import SatudataResource
from .publication import PUBLICATION_FRESHNESS

KEEP_DBT_RUNS = 10
# Unit tests check the SQL on static inputs, not the night's data: dbt recommends running them
# in development and CI only, and the test suite does (tests/test_warehouse_known_answers.py).
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


class WarehouseConfig(dg.Config):
    full_refresh: bool = pydantic.Field(
        default=False,
        description="Rebuild the incremental models from all latest submissions (dbt "
        "--full-refresh). Needed only after changing a macro they call: changed models, seeds "
        "and revisions are picked up without it (dbt_project/macros/incremental.sql).",
    )


def _with_view_row_counts(invocation: DbtCliInvocation, events: Iterable) -> Iterator:
    """dagster-dbt counts the rows of tables and seeds, not of views (a view's query could be
    costly); the staging views here only rename and cast one raw table, so they are counted
    too, through the same adapter, once dbt has finished."""
    for event in events:
        unique_id = event.metadata.get("unique_id") if hasattr(event, "metadata") else None
        node = invocation.manifest["nodes"].get(unique_id.value) if unique_id else None
        if (
            isinstance(event, dg.Output | dg.AssetMaterialization)
            and node is not None
            and node["config"].get("materialized") == "view"
            and invocation.adapter is not None
        ):
            with invocation.adapter.connection_named(f"row_count_{node['unique_id']}"):
                _, table = invocation.adapter.execute(
                    f"select count(*) from {node['relation_name']}", fetch=True
                )
            event = event.with_metadata({**event.metadata, "dagster/row_count": table[0][0]})
        yield event


def _close_adapter(invocation: DbtCliInvocation) -> None:
    """Close the build file in this process once the metadata is read.

    dagster-dbt reads row counts and columns through dbt's adapter in the Dagster process, after
    dbt has finished (DuckDB allows one writer), and dbt-duckdb keeps the file open for the
    adapter's life (``keep_open``). Another connection of this process with other settings
    (the checks, the publication, the next run's ingestion) would be refused."""
    if invocation.adapter is None or invocation.adapter.type() != "duckdb":
        return
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    invocation.adapter.cleanup_connections()
    DuckDBConnectionManager.env().close()


class WarehouseTranslator(DagsterDbtTranslator):
    """dagster-dbt's keys, groups and owners (from dbt ``meta``); the marts, which analysts
    read through the publication, are overdue when older than a publication may be."""

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if spec.group_name == "marts":
            return spec.replace_attributes(freshness_policy=PUBLICATION_FRESHNESS)
        return spec


def warehouse_assets() -> dg.AssetsDefinition:
    """The ``@dbt_assets`` of the project's manifest (under ``dagster dev``, parsed first)."""
    prepare_if_dev()
    manifest = Path(dbt_project.manifest_path)
    if not manifest.exists():
        raise FileNotFoundError(
            f"No dbt manifest at {manifest}: run `make install` (or `satudata prepare`) first."
        )
    translator = WarehouseTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=True)
    )

    @dbt_assets(
        manifest=manifest,
        project=dbt_project,
        dagster_dbt_translator=translator,
        name="warehouse_models",
    )
    def warehouse_models(
        context: dg.AssetExecutionContext,
        config: WarehouseConfig,
        dbt: DbtCliResource,
        satudata: SatudataResource,
    ):
        """``dbt build``: seeds, models and data tests (unit tests run in CI), streamed as
        Dagster events with each model's row count and column lineage. dbt's target folder
        and logs of each run go below ``SATUDATA_HOME/dbt/runs/<run id>``."""
        settings = satudata.settings()
        runs = settings.home / "dbt" / "runs"
        args = [*BUILD_ARGS, "--full-refresh"] if config.full_refresh else BUILD_ARGS
        with build_lock(settings):  # one writer of build.duckdb, whichever run it belongs to
            os.environ[PARENT_ENV] = str(os.getpid())  # dbt dies with this process (launcher.py)
            try:
                invocation = dbt.cli(args, context=context, target_path=runs / context.run.run_id)
            finally:
                del os.environ[PARENT_ENV]  # (dbt was started with a copy of the environment)
            try:
                events = invocation.stream().fetch_row_counts().fetch_column_metadata()
                yield from _with_view_row_counts(invocation, events)
            finally:
                _close_adapter(invocation)
        for old in sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_DBT_RUNS]:
            shutil.rmtree(old, ignore_errors=True)

    return warehouse_models
