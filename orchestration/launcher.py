"""``satudata-dbt``: exactly the venv's ``dbt``, bound to the life of the run that started it.

A run killed with -9 cannot stop its children: its dbt would go on writing ``build.duckdb``
(holding DuckDB's lock on it) while the next run starts. Linux can signal a child when its
parent dies (``PR_SET_PDEATHSIG``); this launcher asks for SIGKILL, then becomes dbt (``exec``
keeps the request). It imports nothing heavy, so that it takes its place within milliseconds.

dagster-dbt asks ``dbt --version`` before every invocation, only to read the version number;
dbt's own answer imports dbt and asks the package index for the newest release (two seconds a
night, and a request to the network). The launcher answers it from the installed packages'
metadata, in dbt's words, and passes everything else to dbt.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from importlib import metadata
from pathlib import Path

# Set by the process that starts dbt (the warehouse step) to its own pid: a parent that died
# before the request took effect is seen even when the launcher was already adopted.
PARENT_ENV = "SATUDATA_DBT_PARENT"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies; exit if it already has."""
    if not sys.platform.startswith("linux"):
        return
    expected = int(os.environ.get(PARENT_ENV) or os.getppid())
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != expected:  # the parent died before the request took effect
        sys.exit(1)


def installed_versions() -> str:
    """What ``dbt --version`` says of the installed dbt, without asking for the newest."""
    return (
        f"Core:\n  - installed: {metadata.version('dbt-core')}\n\n"
        f"Plugins:\n  - duckdb: {metadata.version('dbt-duckdb')}"
    )


def dbt_main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(installed_versions())
        return
    die_with_parent()
    dbt = Path(sys.executable).with_name("dbt")
    os.execv(dbt, [str(dbt), *sys.argv[1:]])
