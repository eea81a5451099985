"""The dbt models as Dagster assets: one lineage from the raw tables to the marts.

dbt sources ``raw.<table>`` map to the ingestion assets' keys ``raw/<table>``; groups and
owners come from dbt ``meta`` (dbt_project.yml); dbt tests show as asset checks.
"""

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pydantic
from dagster_dbt import (
    DagsterDbtCliRuntimeError,
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration.defs.assets.publication import PUBLICATION_FRESHNESS
from orchestration.defs.dbt_project import dbt_project, prepare_if_dev
from orchestration.defs.resources import SatudataResource
from orchestration.ingest.store import build_lock
from orchestration.launcher import PARENT_ENV

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


def _with_table_metadata(events: list, manifest: dict, build_db: Path) -> Iterator:
    """Each model's, seed's and view's ``dagster/row_count`` and ``dagster/column_schema`` (the
    types DuckDB built, the descriptions of the dbt docs), read once dbt has finished through
    one read-only DuckDB connection to the build file (not dbt's adapter inside this process,
    so nothing of dbt-duckdb stays open here). Column lineage is not fetched: the open-source
    UI does not show it (docs/performance.md)."""
    with duckdb.connect(str(build_db), read_only=True) as con:
        types: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, data_type in con.execute(
            "select schema_name, table_name, column_name, data_type from duckdb_columns() "
            "where database_name = current_database() order by column_index"
        ).fetchall():
            types.setdefault((schema, table), []).append((column, data_type))
        for event in events:
            unique_id = event.metadata.get("unique_id") if hasattr(event, "metadata") else None
            node = manifest["nodes"].get(unique_id.value) if unique_id else None
            if isinstance(event, dg.Output | dg.AssetMaterialization) and node is not None:
                (count,) = con.execute(f"select count(*) from {node['relation_name']}").fetchone()
                described = node.get("columns", {})
                schema = dg.TableSchema(
                    columns=[
                        dg.TableColumn(
                            name, data_type, description=described.get(name, {}).get("description")
                        )
                        for name, data_type in types.get((node["schema"], node["alias"]), [])
                    ]
                )
                event = event.with_metadata(
                    {**event.metadata, "dagster/row_count": count, "dagster/column_schema": schema}
                )
            yield event


def dbt_failure(target: Path, manifest: dict, most: int = 10) -> str:
    """What failed in a dbt build, from its ``run_results.json``: one line per failed model,
    seed or test (the first ``most``), with the database's error, the first line the first
    failure (``satudata status`` and the alert show it)."""
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    lines = []
    for result in results:
        if result["status"] not in ("error", "fail", "runtime error"):
            continue
        node = manifest["nodes"].get(result["unique_id"], {})
        what = f"{node.get('resource_type', 'node')} {node.get('schema', '?')}.{node.get('name')}"
        if node.get("resource_type") == "test":
            what = f"test {node.get('name')}"
        message = " ".join((result.get("message") or "").split())
        lines.append(f"dbt {what} {result['status']}: {message}"[:600])
    if not lines:
        return f"dbt build failed; see its log in {target}"
    more = len(lines) - most
    return "\n".join(lines[:most] + ([f"(and {more} more)"] if more > 0 else []))


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
        Dagster events with each model's, seed's and view's row count. dbt's target folder
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
            events, failure = [], None
            try:
                for event in invocation.stream():
                    events.append(event)
            except DagsterDbtCliRuntimeError as exc:  # what dbt did finish is reported all the same
                failure = exc
            # dbt has finished: the build file is ours to read
            yield from _with_table_metadata(events, invocation.manifest, settings.build_db)
            if failure is not None:
                raise dg.Failure(
                    description=dbt_failure(invocation.target_path, invocation.manifest),
                    metadata={"dbt_log": dg.MetadataValue.path(str(invocation.target_path))},
                ) from failure
        for old in sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_DBT_RUNS]:
            shutil.rmtree(old, ignore_errors=True)

    return warehouse_models
