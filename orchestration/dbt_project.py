"""The dbt project, declared once; its manifest is prepared on demand, never at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from .child import project_files
from .settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# the dbt installed beside this interpreter, whether or not the venv is on PATH, through a
# launcher that makes it die with the run that started it (see ``orchestration.child``)
DBT_EXECUTABLE = str(Path(sys.executable).with_name("satudata-dbt"))


def manifest_is_current() -> bool:
    manifest = Path(dbt_project.manifest_path)
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in project_files(Path(dbt_project.project_dir)))


def prepare_manifest(force: bool = False) -> Path:
    """``dbt parse`` when the manifest is missing or older than the project's files."""
    if force or not manifest_is_current():
        home = Path(os.environ.get("SATUDATA_HOME", "data")).resolve()
        home.mkdir(parents=True, exist_ok=True)  # dbt runs from there (``child.run_from_home``)
        env = {**os.environ, "SATUDATA_HOME": str(home)}
        subprocess.run(
            [DBT_EXECUTABLE, "parse", "--quiet", "--project-dir", str(dbt_project.project_dir),
             "--profiles-dir", str(dbt_project.profiles_dir)],
            check=True,
            env=env,
        )  # fmt: skip
    return Path(dbt_project.manifest_path)
