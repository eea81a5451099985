"""Child processes that do not outlive the run that started them.

A run killed with ``-9`` cannot stop its children, and an orphaned ``dbt`` or GX process keeps
``build.duckdb`` locked (or keeps writing it) while the next run starts. On Linux the kernel can
deliver a signal to a child when its parent dies (``PR_SET_PDEATHSIG``); both children ask for
``SIGKILL`` before they touch the warehouse. Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies; exit if it already has."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent or parent == 1:  # the parent died before the request took effect
        sys.exit(1)


def dbt_main() -> None:
    """``satudata-dbt``: the ``dbt`` beside this interpreter, bound to its parent's life.

    ``--version`` alone is answered from the installed package metadata, without starting dbt.

    ``exec`` keeps the death signal (it is only cleared for set-uid programs), so dbt itself,
    not a wrapper around it, is what dies with the run.
    """
    if sys.argv[1:] == ["--version"]:
        # dagster-dbt asks this once per run to parse the version; dbt itself takes 2 s to
        # answer (it imports everything and asks the package index for the latest release)
        from importlib.metadata import version

        print(f"Core:\n  - installed: {version('dbt-core')}\n\nPlugins:\n"
              f"  - duckdb: {version('dbt-duckdb')}")  # fmt: skip
        return
    exec_bound(Path(sys.executable).with_name("dbt"), sys.argv[1:])


def exec_bound(program: Path | str, args: list[str]) -> None:
    """Replace this process by ``program``, which then dies with this process's parent."""
    die_with_parent()
    os.execv(program, [str(program), *args])
