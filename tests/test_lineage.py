"""The Dagster asset graph: one lineage from the landing sensor's assets through dbt to the marts."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.definitions import defs


def _graph():
    return defs().resolve_asset_graph()


def _ancestors(key: dg.AssetKey) -> set[dg.AssetKey]:
    graph, seen, todo = _graph(), set(), [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_fct_poverty_has_exactly_its_modelled_upstream_keys():
    parents = {
        k.to_user_string() for k in _graph().get(dg.AssetKey(["marts", "fct_poverty"])).parent_keys
    }
    assert parents == {
        "intermediate/int_households_classified",
        "intermediate/int_regions_approved",
        "intermediate/int_regions_units_overlapped",
        "intermediate/int_villages_rolled_up",
        "staging/stg_raw__submissions",
    }


def test_marts_descend_from_the_ingestion_assets_through_staging_and_intermediate():
    ancestors = {k.to_user_string() for k in _ancestors(dg.AssetKey(["marts", "fct_poverty"]))}
    assert {"raw/households", "raw/submissions", "staging/stg_raw__households",
            "intermediate/int_households_classified", "reference/poverty_lines"} <= ancestors  # fmt: skip
    graph = _graph()
    for key in graph.get_all_asset_keys():
        group = graph.get(key).group_name
        # raw tables are written by ingestion, and raw.signoffs by the forum's sign-off job
        assert group == key.path[0] or (group, key.path[0]) in {
            ("ingestion", "raw"),
            ("forum", "raw"),
        }, key


def test_the_landing_sensor_targets_the_assets_that_feed_the_warehouse():
    job = defs().resolve_job_def(defs().resolve_sensor_def("landing_sensor").job_name)
    sensed = {k for k in job.asset_layer.selected_asset_keys}
    staging_parents = {
        p for p in _graph().get(dg.AssetKey(["staging", "stg_raw__households"])).parent_keys
    }
    assert staging_parents <= sensed


def test_dbt_tests_are_asset_checks():
    checks = {c.name for c in _graph().asset_check_keys}
    assert "unique_dim_region_region_code" in checks
    assert any(name.startswith("unique_combination_fct_poverty") for name in checks)


def test_importing_the_code_location_reads_nothing_and_a_missing_manifest_is_a_clear_error(
    tmp_path,
):
    """Modules have no import-time work: without a parsed dbt project, importing the
    definitions succeeds, and loading them says what to run."""
    import shutil
    import subprocess
    import sys

    from orchestration.settings import DBT_PROJECT_DIR

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    script = (
        "import orchestration.defs.definitions as d\n"
        "print('imported')\n"
        "try:\n    d.defs()\nexcept FileNotFoundError as e:\n    print('load:', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "SATUDATA_DBT_PROJECT_DIR": str(project)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imported" in done.stdout
    assert "No dbt manifest" in done.stdout and "satudata prepare" in done.stdout


def test_every_check_says_what_it_checks():
    """dbt tests (``meta.description`` in the models' yml) and GX suites alike: the UI shows
    each check's description instead of 'No description provided'."""
    specs = [s for a in _graph().assets_defs for s in a.check_specs]
    assert len(specs) > 60
    assert [s.name for s in specs if not s.description] == []
