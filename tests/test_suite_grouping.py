"""The suite's heavy modules build their warehouse once, in a module fixture, on one worker:
`make test` runs pytest-xdist with `--dist loadgroup` and each such module is one
`xdist_group`. pytest 9.2 silently stops that grouping (pytest-xdist#1386): every worker then
builds the same warehouse again and the suite takes minutes longer. pyproject.toml keeps pytest
below 9.2; this test fails when the grouping stops working, whatever the versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GROUPED = """
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("one")


@pytest.mark.parametrize("n", range(6))
def test_grouped(n):
    Path(os.environ["OUT"], f"grouped-{n}").write_text(os.environ["PYTEST_XDIST_WORKER"])
"""

UNGROUPED = """
import os
from pathlib import Path

import pytest


@pytest.mark.parametrize("n", range(6))
def test_free(n):
    Path(os.environ["OUT"], f"free-{n}").write_text(os.environ["PYTEST_XDIST_WORKER"])
"""


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_free.py").write_text(UNGROUPED)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q",
         "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env={"OUT": str(out), "PATH": ""}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {p.name: p.read_text() for p in out.iterdir()}
    assert len(workers) == 12
    grouped = {w for name, w in workers.items() if name.startswith("grouped-")}
    assert len(grouped) == 1, f"one xdist_group ran on {sorted(grouped)}"
    # (the ungrouped tests are spread over both workers, so both were there to take the group)
    assert set(workers.values()) == {"gw0", "gw1"}
