"""The data root every asset works under, as a Dagster resource (dbt's: ``dbt_project.py``)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orchestration.settings import Settings


class SatudataResource(dg.ConfigurableResource):
    """The data root (``SATUDATA_HOME``); empty means: read the environment when used."""

    home: str = ""

    def settings(self) -> Settings:
        return Settings(Path(self.home).resolve()) if self.home else Settings.from_env()
