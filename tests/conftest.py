from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from orchestration.ingest.pipeline import Ingestor
from orchestration.settings import Settings

TEST_KEY = "test-pseudonym-key-not-secret"


def pytest_configure(config: pytest.Config) -> None:
    """Parse the dbt project once per session (in the xdist controller), before any test module
    imports the Dagster definitions that read its manifest."""
    if hasattr(config, "workerinput"):
        return
    import os
    import tempfile

    from orchestration.defs.dbt_project import prepare

    previous = os.environ.get("SATUDATA_HOME")
    os.environ["SATUDATA_HOME"] = tempfile.mkdtemp(prefix="satudata-parse-")
    try:
        prepare()
    finally:
        if previous is None:
            del os.environ["SATUDATA_HOME"]
        else:
            os.environ["SATUDATA_HOME"] = previous


NOW = dt.datetime(2025, 4, 10, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    home = tmp_path / "data"
    monkeypatch.setenv("SATUDATA_HOME", str(home))
    monkeypatch.setenv("SATUDATA_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return Settings(home).ensure()


@pytest.fixture
def ingest(settings: Settings):
    """Run ingestion over landing/ as of ``NOW``; returns the outcomes."""

    def run(now: dt.datetime = NOW):
        return Ingestor(settings, now=now).run()

    return run


@pytest.fixture
def query(settings: Settings):
    def run(sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(settings.build_db), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    return run
