"""The dbt project, declared once (dagster-dbt's ``DbtProject``), and the dbt it runs.

The manifest Dagster reads is prepared at install (``make install`` runs ``satudata prepare``)
and again by ``prepare_if_dev()`` whenever ``dagster dev`` loads the code location.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from .settings import DBT_PROJECT_DIR

# dbt beside this interpreter, whether or not the venv is on PATH, through ``satudata-dbt``
# (``dbt_main`` below), so that it dies with the run that started it.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("satudata-dbt"))


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def prepare() -> Path:
    """``dbt parse`` into the project's target folder, as dagster-dbt's preparer does, with
    this interpreter's dbt (found whether or not the venv is on PATH): the manifest the
    Dagster definitions are built from."""
    from dagster_dbt import DbtCliResource

    dbt = DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
    dbt.cli(["parse", "--quiet"], target_path=Path(dbt_project.target_path)).wait()
    return Path(dbt_project.manifest_path)


def prepare_if_dev() -> None:
    """Under ``dagster dev`` only: parse again, so the UI shows the project as it is now."""
    if dbt_project.preparer.using_dagster_dev():
        prepare()


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux's ``PR_SET_PDEATHSIG``).

    A run killed with -9 cannot stop its children: without this, its dbt would go on writing
    ``build.duckdb`` (and hold DuckDB's lock on it) while the next run starts."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        sys.exit(1)


def dbt_main() -> None:
    """``satudata-dbt``: exactly ``dbt``, bound to its parent's life (``exec`` keeps the
    death signal, so dbt itself, not a wrapper around it, dies with the run)."""
    die_with_parent()
    dbt = Path(sys.executable).with_name("dbt")
    os.execv(dbt, [str(dbt), *sys.argv[1:]])
