"""Child processes that do not outlive the run that started them.

A run killed with ``-9`` cannot stop its children, and an orphaned ``dbt`` or GX process keeps
``build.duckdb`` locked (or keeps writing it) while the next run starts. On Linux the kernel can
deliver a signal to a child when its parent dies (``PR_SET_PDEATHSIG``); both children ask for
``SIGKILL`` before they touch the warehouse. Elsewhere this is a no-op.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import NoReturn

_PR_SET_PDEATHSIG = 1


def exit_now(code: int) -> NoReturn:
    """End this process with ``code``, without the interpreter's teardown.

    At exit Python frees every object of every imported module one by one: 0.7 s in a process
    that imported Dagster and dbt, about as much again with GX, and each run paid it three times
    (``satudata run``, the dbt it waits for, the GX runner it waits for). What the teardown
    would still do that matters is done here: other threads are waited for, exit handlers run
    (dbt-duckdb closes, and so checkpoints, the build file in one: without it a WAL is left
    behind, see tests/test_make_run.py), logs and standard streams are flushed. Connections and
    files of this package are closed where they are used, never left to the teardown.
    """
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # noqa: SLF001 - what sys.exit would run; os._exit runs nothing
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken stream has nothing to flush
            stream.flush()
    os._exit(code)


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
    die_with_parent()
    args = run_from_home(sys.argv[1:])
    code = _run_on_standby(args)
    if code is not None:
        sys.exit(code)
    exec_bound(Path(sys.executable).with_name("dbt"), args)


# dbt re-parses the whole project (3 s) when the rendered profile differs from the one its
# partial-parse state was written with, and the profile names the build file below
# SATUDATA_HOME: every new home (a fresh install, each test, the benchmark) paid a full parse.
# dbt therefore runs from the data root with SATUDATA_HOME=".", so the profile renders the same
# relative path in every home and the parse state written at install time serves them all.
_PATH_OPTIONS = ("--project-dir", "--profiles-dir", "--target-path", "--log-path", "--state")


def run_from_home(args: list[str]) -> list[str]:
    """Move to ``SATUDATA_HOME`` (``../data`` from here when unset, as the profile says), set
    ``SATUDATA_HOME=.`` and return ``args`` with their paths absolute and ``--project-dir`` set."""
    home = Path(os.environ.get("SATUDATA_HOME", "../data")).resolve()
    if not args or args[0].startswith("-") or not home.is_dir():
        return args
    here = Path.cwd()
    absolute = [
        str(here / arg) if k and args[k - 1] in _PATH_OPTIONS else arg for k, arg in enumerate(args)
    ]
    if "--project-dir" not in args and "DBT_PROJECT_DIR" not in os.environ:
        absolute += ["--project-dir", str(here)]
    os.chdir(home)
    os.environ["SATUDATA_HOME"] = "."
    return absolute


def exec_bound(program: Path | str, args: list[str]) -> None:
    """Replace this process by ``program``, which then dies with this process's parent."""
    die_with_parent()
    os.execv(program, [str(program), *args])


# -- a dbt that has already started -----------------------------------------------------------
# dbt takes about 2 s to import before it does anything. The run starts a standby dbt early
# (while ingestion works, on the other core); the next ``satudata-dbt`` the same process starts
# hands it its arguments, environment, working directory and standard streams, and waits for
# its exit code. Without a standby (or off Linux) the launcher runs dbt itself, as before.

STANDBY_IDLE_SECONDS = 1800


def _standby_address(run_pid: int) -> str:
    return f"\0satudata-dbt-standby-{run_pid}"  # Linux's abstract namespace: no file to clean


_standbys: list[subprocess.Popen] = []


def start_dbt_standby() -> subprocess.Popen | None:
    """A dbt process of this process, importing dbt now; ``satudata-dbt`` will use it once."""
    if not sys.platform.startswith("linux"):
        return None
    _standbys[:] = [p for p in _standbys if p.poll() is None]  # (reaps the ones that ended)
    _standbys.append(
        subprocess.Popen(
            [sys.executable, "-m", "orchestration.child", "dbt-standby"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    return _standbys[-1]


def _run_on_standby(args: list[str]) -> int | None:
    """Run dbt on the standby of this launcher's parent; None when there is none."""
    if not sys.platform.startswith("linux"):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(_standby_address(os.getppid()))
    except OSError:
        return None
    request = {"args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    started = conn.recv(1 << 16)
    if not started:
        return None  # it ended before taking the request: run dbt here
    pid = json.loads(started)["pid"]

    def forward(signum: int, _frame: object) -> None:  # dagster-dbt stops dbt with these
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    finished = conn.recv(1 << 16)
    return json.loads(finished)["exit"] if finished else 1


def _standby() -> int:
    die_with_parent()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        server.bind(_standby_address(os.getppid()))
    except OSError:
        return 0  # this process already has a standby
    server.listen(1)
    from dbt.cli.main import cli  # the slow part, done before anybody waits for it

    server.settimeout(STANDBY_IDLE_SECONDS)
    try:
        conn, _ = server.accept()
    except TimeoutError:
        return 0
    server.close()
    conn.settimeout(None)
    message, fds, _flags, _address = socket.recv_fds(conn, 1 << 22, 3)
    request = json.loads(message)
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    conn.sendall(json.dumps({"pid": os.getpid()}).encode())

    finished = threading.Event()

    def launcher_gone() -> None:  # the launcher was killed: so is its dbt
        if not conn.recv(1) and not finished.is_set():
            os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=launcher_gone, daemon=True).start()
    try:
        cli.main(args=request["args"], prog_name="dbt")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    finished.set()
    conn.sendall(json.dumps({"exit": code}).encode())
    return code


if __name__ == "__main__" and sys.argv[1:] == ["dbt-standby"]:
    exit_now(_standby())
