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
import gc
import json
import logging
import os
import shutil
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


# Python's cyclic garbage collector visits every tracked object in its oldest generation each
# time that generation fills: while Dagster, dbt or GX import (hundreds of thousands of objects,
# none garbage), and again and again afterwards over objects that live as long as the process.
# That was 0.9 s of `satudata run`'s own time and 0.7 s of the dbt build's, found with
# ``gc.callbacks``. The three long processes collect nothing while they start, then freeze
# what they started with (never visited again) and let young objects pile up a little longer.
GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (Python's default: 700)


_starting: list[bool] = []  # [True] between ``starting`` and ``started``


def starting() -> None:
    """No cyclic collection while this process imports and loads what it keeps. Only for a
    process of ours (the ``satudata`` command, the standby dbt, the GX runner), never for a
    caller's: it freezes everything alive when ``started`` comes."""
    _starting[:] = [True]
    gc.disable()


def started() -> None:
    """The process has loaded what it keeps: freeze it and collect again. Does nothing
    unless ``starting`` came first."""
    if not _starting:
        return
    _starting.clear()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.enable()


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
# dbt takes about 2 s to import before it does anything, and 1 s more to load its parse state
# and write the manifest before it runs the first node. The run starts a standby dbt early
# (while ingestion works, on the other core), which imports dbt and parses the project; the
# next ``satudata-dbt`` the same process starts hands it its arguments, environment, working
# directory and standard streams, and waits for its exit code. The standby runs that command
# on the manifest it parsed (dbt's programmatic API, ``dbtRunner(manifest=...)``) when nothing
# the parse depends on has changed since (``_Parsed.serves``), else as dbt's command line would.
# Without a standby (or off Linux) the launcher runs dbt itself, as before.

STANDBY_IDLE_SECONDS = 1800


def _standby_address(run_pid: int) -> str:
    return f"\0satudata-dbt-standby-{run_pid}"  # Linux's abstract namespace: no file to clean


_standbys: list[subprocess.Popen] = []


def start_dbt_standby() -> subprocess.Popen | None:
    """A dbt process of this process, importing dbt now; ``satudata-dbt`` will use it once.

    ``SATUDATA_DBT_STANDBY=0`` starts none: dbt then starts (and parses) when it is asked."""
    if not sys.platform.startswith("linux") or os.environ.get("SATUDATA_DBT_STANDBY") == "0":
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
    starting()
    from dbt.cli.main import cli  # the slow part, done before anybody waits for it

    parsed = _parse_ahead()
    started()  # dbt's modules and the manifest live to the end
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
    if parsed is not None and parsed.serves(request):
        code = parsed.run(request["args"])
    else:
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


# -- the project parsed ahead ------------------------------------------------------------------
# Environment variables dagster-dbt sets for each invocation, which the parse does not read.
_PER_INVOCATION_ENV = frozenset(
    {"DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_LOG_FORMAT", "DBT_INDIRECT_SELECTION",
     "DBT_SEND_ANONYMOUS_USAGE_STATS", "DBT_PROJECT_DIR", "DBT_PROFILES_DIR", "SATUDATA_HOME"}
)  # fmt: skip
# Options that change what the parse yields (the two directories are compared instead).
_PARSE_OPTIONS = ("--vars", "--profile", "--target", "-t")


def project_files(project_dir: Path) -> list[Path]:
    """The files of the dbt project that its parse reads."""
    folders = ("models", "macros", "seeds", "tests")
    files = [p for f in folders for p in (project_dir / f).rglob("*") if p.is_file()]
    return files + [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]


def _fingerprint(project_dir: Path) -> frozenset:
    return frozenset(
        (str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in project_files(project_dir)
    )


def _parse_env(env: dict[str, str]) -> dict[str, str]:
    """The environment the parse can depend on: the project's own and dbt's variables."""
    return {
        k: v
        for k, v in env.items()
        if k.startswith(("SATUDATA_", "DBT_")) and k not in _PER_INVOCATION_ENV
    }


def parse_state(home: Path) -> Path:
    """``home/dbt/partial_parse.msgpack``, dbt's parse state for this home: replaced first by
    the one prepared with the project (``satudata prepare``) when that is newer, so a project
    prepared after a code change wins over the state a home kept from before."""
    from .settings import DBT_PROJECT_DIR

    own = home / "dbt" / "partial_parse.msgpack"
    prepared = DBT_PROJECT_DIR / "target" / own.name
    if prepared.exists() and (not own.exists() or prepared.stat().st_mtime > own.stat().st_mtime):
        own.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(prepared, own.with_suffix(".tmp"))
        own.with_suffix(".tmp").replace(own)
    return own


class _Parsed:
    """The project as the standby parsed it, and what that parse depended on."""

    def __init__(self, manifest: object, home: Path, project: Path, env: dict[str, str]):
        self.manifest, self.home, self.project = manifest, home, project
        self.env = _parse_env(env)
        self.fingerprint = _fingerprint(project)

    def serves(self, request: dict) -> bool:
        """Whether dbt would parse ``request`` into this same manifest."""
        args, env = request["args"], request["env"]

        def given(option: str, variable: str) -> Path | None:
            value = args[args.index(option) + 1] if option in args[:-1] else env.get(variable)
            return Path(request["cwd"], value).resolve() if value else None

        return (
            args[:1] == ["build"]
            and Path(request["cwd"]).resolve() == self.home
            and env.get("SATUDATA_HOME") == "."
            and given("--project-dir", "DBT_PROJECT_DIR") == self.project
            and given("--profiles-dir", "DBT_PROFILES_DIR") == self.project
            and not any(a.split("=")[0] in _PARSE_OPTIONS for a in args)
            and _parse_env(env) == self.env
            and _fingerprint(self.project) == self.fingerprint
        )

    def run(self, args: list[str]) -> int:
        """``dbt <args>`` on this manifest, with the exit code dbt's command line gives."""
        from dbt.cli.main import dbtRunner

        result = dbtRunner(manifest=self.manifest).invoke(args)
        if result.success:
            return 0
        if result.exception is None:
            return 1  # models or tests failed: dbt has reported them
        print(f"dbt: {result.exception}", file=sys.stderr)
        return 2


def _parse_ahead() -> _Parsed | None:
    """Parse the project as the launcher will ask for it (from the data root, with
    ``SATUDATA_HOME=.``, see ``run_from_home``); None when there is no data root to parse for
    or the parse fails (dbt then parses again when asked, and reports what went wrong)."""
    from dbt.cli.main import dbtRunner

    from .settings import DBT_PROJECT_DIR

    if not os.environ.get("SATUDATA_HOME"):
        return None
    home, project = Path(os.environ["SATUDATA_HOME"]).resolve(), DBT_PROJECT_DIR.resolve()
    if not home.is_dir():
        return None
    try:
        state = parse_state(home)
    except OSError:
        return None
    env = dict(os.environ)
    here = os.getcwd()
    os.chdir(home)
    os.environ["SATUDATA_HOME"] = "."
    try:
        parsed = _Parsed(None, home, project, env)  # what the parse reads, taken before it
        folders = ["--target-path", str(state.parent), "--log-path", str(state.parent)]
        common = ["--project-dir", str(project), "--profiles-dir", str(project), *folders]
        result = dbtRunner().invoke(["parse", "--quiet", "--no-write-json", *common])
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(env)
    if not result.success:
        return None
    parsed.manifest = result.result
    return parsed


if __name__ == "__main__" and sys.argv[1:] == ["dbt-standby"]:
    exit_now(_standby())
