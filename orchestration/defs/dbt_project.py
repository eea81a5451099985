"""The dbt project, declared once (dagster-dbt's ``DbtProject``), and the dbt it runs.

The manifest Dagster reads is prepared at install (``make install`` runs ``satudata prepare``)
and again by ``prepare_if_dev()`` whenever ``dagster dev`` loads the code location.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.settings import DBT_PROJECT_DIR

# dbt beside this interpreter, whether or not the venv is on PATH, through ``satudata-dbt``
# (``orchestration.launcher``), so that it dies with the run that started it.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("satudata-dbt"))


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# dbt's log file keeps warnings and errors: at its default level (debug) it writes every query
# and event, which costs more than half a second a night; what a run did is in its
# run_results.json, and its SQL in compiled/ and run/ beside it.
DBT_FLAGS = ["--log-level-file", "warn"]


def dbt_resource():
    """The dbt that the warehouse step and ``prepare`` run."""
    from dagster_dbt import DbtCliResource

    return DbtCliResource(
        project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE, global_config_flags=DBT_FLAGS
    )


def prepare() -> Path:
    """``dbt parse`` into the project's target folder, as dagster-dbt's preparer does, with
    this interpreter's dbt (found whether or not the venv is on PATH): the manifest the
    Dagster definitions are built from."""
    dbt_resource().cli(["parse", "--quiet"], target_path=Path(dbt_project.target_path)).wait()
    return Path(dbt_project.manifest_path)


def prepare_if_dev() -> None:
    """Under ``dagster dev`` only: parse again, so the UI shows the project as it is now."""
    if dbt_project.preparer.using_dagster_dev():
        prepare()
