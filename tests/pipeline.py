"""A small published warehouse, built once per test module by the real pipeline."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from orchestration import cli
from tests.submissions import manifest, register, write_submission


@contextmanager
def environment(home: Path, **extra: str):
    previous = {
        k: os.environ.get(k)
        for k in ("SATUDATA_HOME", "SATUDATA_PSEUDONYM_KEY", "DAGSTER_HOME", *extra)
    }
    os.environ.update(
        {"SATUDATA_HOME": str(home), "SATUDATA_PSEUDONYM_KEY": "pipeline-test-key", **extra}
    )
    os.environ.pop("DAGSTER_HOME", None)  # Dagster's home inside this data root
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def add_submissions(
    home: Path, sent: str = "2025-04-03T09:00:00+08:00", households: int = 20
) -> None:
    landing = home / "landing"
    for unit in ("64.74.02", "64.74.01"):
        name = f"{unit}-{sent[:10]}-{households}"
        write_submission(
            landing, name, register(unit, households=households), manifest(unit, sent=sent)
        )


def run_pipeline(home: Path, **extra: str) -> int:
    with environment(home, **extra):
        return cli.main(["run"])


def build_published(home: Path) -> Path:
    add_submissions(home)
    assert run_pipeline(home) == 0
    return home


def copy_home(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target
