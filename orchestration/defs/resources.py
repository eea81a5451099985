"""Dagster resources: the data root every asset works under, and dbt."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.dbt_project import DBT_EXECUTABLE, dbt_project
from orchestration.settings import Settings


class SatudataResource(dg.ConfigurableResource):
    """The data root (``SATUDATA_HOME``); empty means: read the environment when used."""

    home: str = ""

    def settings(self) -> Settings:
        return Settings(Path(self.home).resolve()) if self.home else Settings.from_env()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
