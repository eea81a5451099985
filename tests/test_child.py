"""Children of a run die with it: a run killed with -9 leaves no orphan holding the build file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestration.dbt_project import DBT_EXECUTABLE
from orchestration.definitions import defs

PARENT = textwrap.dedent(
    """
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
    print(child.pid, flush=True)
    child.wait()
    """
)
CHILDREN = {
    "bound": "from orchestration.child import exec_bound; exec_bound('/bin/sleep', ['60'])",
    "unbound": "import os; os.execv('/bin/sleep', ['/bin/sleep', '60'])",
}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _survives_killed_parent(parent: subprocess.Popen, child: int) -> bool:
    """Kill ``parent`` with -9; whether ``child`` is still alive 5 s later (then killed)."""
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = _alive(child)
    if survived:
        os.kill(child, signal.SIGKILL)
    return survived


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("kind", CHILDREN)
def test_a_bound_child_dies_when_its_parent_is_killed(kind):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILDREN[kind]], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"/bin/sleep"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert _survives_killed_parent(parent, child) is (kind == "unbound")


def test_dagster_runs_dbt_through_the_bound_launcher():
    assert Path(DBT_EXECUTABLE).name == "satudata-dbt"
    assert Path(DBT_EXECUTABLE).exists()
    assert defs.resources["dbt"].dbt_executable == DBT_EXECUTABLE


def test_the_launcher_answers_the_version_as_dbt_does():
    def version(executable: str) -> str:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
        return re.search(r"(\d+\.\d+\.\d+)", out.stdout).group(1)  # as dagster-dbt reads it

    assert version(DBT_EXECUTABLE) == version(str(Path(sys.executable).with_name("dbt")))


def test_dagster_starts_dbt_without_loading_dbts_adapter_in_its_own_process(monkeypatch, tmp_path):
    """dagster-dbt's resource loads dbt's adapter and macros before starting dbt (2.6 s a run);
    the resource of these assets does not, and dbt is still started with the same command."""
    import dbt.adapters.factory as factory
    from dagster_dbt import DbtCliResource

    from orchestration.dbt_project import dbt_project
    from orchestration.resources import WarehouseDbt

    registered = []
    real = factory.register_adapter
    monkeypatch.setattr(
        factory, "register_adapter", lambda *a, **k: (registered.append(a), real(*a, **k))[1]
    )
    monkeypatch.setenv("SATUDATA_HOME", str(tmp_path))
    fake = tmp_path / "fake-dbt"  # records its arguments instead of building
    fake.write_text(
        '#!/bin/sh\n[ "$1" = "--version" ] && { echo "Core: installed: 1.11.16"; exit 0; }\n'
        f'echo "$@" >> {tmp_path / "calls"}\n'
    )
    fake.chmod(0o755)
    for resource in (DbtCliResource, WarehouseDbt):
        registered.clear()
        dbt = resource(project_dir=dbt_project, dbt_executable=str(fake))
        invocation = dbt.cli(
            ["build"], manifest=dbt_project.manifest_path, target_path=tmp_path / resource.__name__
        )
        assert invocation.process.wait() == 0
        assert bool(registered) is (resource is DbtCliResource), resource.__name__
    first, second = (tmp_path / "calls").read_text().splitlines()
    assert first.replace("DbtCliResource", "X") == second.replace("WarehouseDbt", "X")
    assert first.startswith("build")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the standby is Linux-only")
def test_the_launcher_runs_dbt_on_the_standby_of_its_parent_with_its_exit_code(tmp_path):
    from orchestration.child import start_dbt_standby

    for args, code, expected in (
        (["--help"], 0, "Usage: dbt"),
        (["no-such-command"], 2, "No such command"),
    ):
        standby = start_dbt_standby()
        address = f"@satudata-dbt-standby-{os.getpid()}"
        deadline = time.monotonic() + 30
        while address not in Path("/proc/net/unix").read_text():  # listening (as during ingestion)
            assert time.monotonic() < deadline
            time.sleep(0.02)
        launched = subprocess.run(
            [DBT_EXECUTABLE, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )
        assert launched.returncode == code
        assert expected in launched.stdout + launched.stderr
        assert standby.wait(timeout=30) == code  # the standby ran it, and it ran once
    launched = subprocess.run([DBT_EXECUTABLE, "--help"], capture_output=True, text=True)
    assert launched.returncode == 0 and "Usage: dbt" in launched.stdout  # no standby: dbt itself


def test_dbt_runs_from_the_data_root_with_its_paths_made_absolute(tmp_path, monkeypatch):
    """The profile then renders ``./warehouse/build.duckdb`` in every home (see
    ``child.run_from_home``); arguments given relative to where dbt was started still hold."""
    from orchestration.child import run_from_home

    home, project = tmp_path / "data", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("SATUDATA_HOME", str(home))
    monkeypatch.delenv("DBT_PROJECT_DIR", raising=False)
    args = run_from_home(["build", "--target-path", "t", "--select", "x", "--log-path", "/abs"])
    assert Path.cwd() == home and os.environ["SATUDATA_HOME"] == "."
    assert args == ["build", "--target-path", str(project / "t"), "--select", "x",
                    "--log-path", "/abs", "--project-dir", str(project)]  # fmt: skip
    # a given project directory is kept; options alone (``--version``) are left as they are
    monkeypatch.chdir(project)
    monkeypatch.setenv("SATUDATA_HOME", str(home))
    assert run_from_home(["parse", "--project-dir", "p"]) == [
        "parse",
        "--project-dir",
        str(project / "p"),
    ]
    monkeypatch.chdir(project)
    assert run_from_home(["--version"]) == ["--version"] and Path.cwd() == project


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_forked_gx_worker_dies_when_its_runner_is_killed():
    """A fork does not inherit the death signal: the GX worker asks for its own."""
    runner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import time
            from orchestration.checks.gx_runner import _fork_worker
            pid, _ = _fork_worker(lambda: time.sleep(60))
            print(pid, flush=True)
            time.sleep(60)
            """
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    worker = int(runner.stdout.readline())
    time.sleep(0.5)  # (the worker has asked for the signal)
    assert _alive(worker)
    assert not _survives_killed_parent(runner, worker)


EXITING = textwrap.dedent(
    """
    import atexit, logging, sys, threading, time
    from pathlib import Path
    from orchestration.child import exit_now

    out = Path(sys.argv[1])
    logging.basicConfig(filename=out / "log.txt", level=logging.INFO)
    atexit.register(lambda: (out / "atexit.txt").write_text("ran"))
    def late():
        time.sleep(0.3)
        (out / "thread.txt").write_text("joined")
    threading.Thread(target=late).start()
    logging.getLogger("x").info("logged before exit")
    sys.stdout.write("buffered, no newline")  # a pipe: block-buffered, not yet written
    exit_now(3)
    """
)


def _buffered_env(**extra: str) -> dict[str, str]:
    """The environment without PYTHONUNBUFFERED (set here): a child's stdout is then
    block-buffered, as on the machines that run it, and only a flush writes it."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, **extra}


def test_exit_now_does_what_the_teardown_would_that_matters(tmp_path):
    done = subprocess.run([sys.executable, "-c", EXITING, str(tmp_path)], capture_output=True,
                          text=True, env=_buffered_env(), timeout=60)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered, no newline"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "thread.txt").read_text() == "joined"
    assert "logged before exit" in (tmp_path / "log.txt").read_text()


def test_the_satudata_command_leaves_with_its_exit_code_and_output(tmp_path):
    satudata = Path(sys.executable).with_name("satudata")
    env = _buffered_env(SATUDATA_HOME=str(tmp_path))
    refused = subprocess.run([satudata, "run", "--job", "ingest", "--full-refresh"],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "only with --job nightly" in refused.stderr
    status = subprocess.run([satudata, "status"], capture_output=True, text=True, env=env,
                            timeout=120)  # fmt: skip
    assert status.returncode == 0 and f"SATUDATA_HOME: {tmp_path}" in status.stdout


def test_the_standby_serves_a_build_from_its_parse_only_when_nothing_the_parse_read_changed(
    tmp_path,
):
    """A request the standby's manifest does not fit is run as dbt's command line would (which
    parses again): another command, data root, project, profile, variables or project file."""
    from orchestration.child import _Parsed

    home, project = tmp_path / "home", tmp_path / "project"
    (project / "models").mkdir(parents=True)
    home.mkdir()
    for name in ("dbt_project.yml", "profiles.yml", "models/a.sql"):
        (project / name).write_text("x")
    parsed = _Parsed("manifest", home, project, {"SATUDATA_PSEUDONYM_KEY": "k", "PATH": "/bin"})

    def request(*extra: str, cwd: Path = home, **env: str) -> dict:
        return {
            "args": ["build", "--exclude-resource-type", "unit_test", *extra],
            "cwd": str(cwd),
            "env": {"SATUDATA_HOME": ".", "SATUDATA_PSEUDONYM_KEY": "k", "PATH": "/usr/bin",
                    "DBT_PROJECT_DIR": str(project), "DBT_PROFILES_DIR": str(project),
                    "DBT_TARGET_PATH": str(tmp_path / "t"), "DBT_LOG_FORMAT": "json"} | env,
        }  # fmt: skip

    assert parsed.serves(request())
    # what dagster-dbt changes from one invocation to the next does not matter
    assert parsed.serves(request("--full-refresh", DBT_TARGET_PATH="/elsewhere"))
    assert parsed.serves(request("--project-dir", str(project)))
    refused = {
        "another command": {**request(), "args": ["run"]},
        "another data root": request(cwd=tmp_path),
        "an absolute SATUDATA_HOME": request(SATUDATA_HOME=str(home)),
        "another project": request("--project-dir", str(tmp_path)),
        "another profiles dir": request(DBT_PROFILES_DIR=str(tmp_path)),
        "variables": request("--vars", "{working_age: 10}"),
        "another target": request("--target=prod"),
        "another key": request(SATUDATA_PSEUDONYM_KEY="other"),
        "a dbt setting": request(DBT_PROFILE="other"),
    }
    assert [why for why, r in refused.items() if parsed.serves(r)] == []
    (project / "models" / "a.sql").write_text("changed")
    assert not parsed.serves(request())


def test_the_collector_waits_while_a_process_of_ours_starts_and_is_left_alone_otherwise():
    script = """
import gc, json
from orchestration.child import GC_YOUNG_THRESHOLD, started, starting
threshold = gc.get_threshold()
started()  # without ``starting``: a caller's process, left as it is
seen = {"untouched": gc.isenabled() and gc.get_threshold() == threshold and gc.get_freeze_count() == 0}
starting()
seen["off while starting"] = not gc.isenabled()
import email.mime.text  # something to keep
started()
seen["on, frozen, tuned"] = (gc.isenabled() and gc.get_freeze_count() > 0
                             and gc.get_threshold()[0] == GC_YOUNG_THRESHOLD)
print(json.dumps(seen))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert all(json.loads(done.stdout).values()), done.stdout


def test_satudata_run_collects_again_once_it_has_started(tmp_path, monkeypatch):
    """The ``satudata`` command stops the collector while Dagster and dbt import: the run must
    turn it back on (an in-process caller's collector is not touched at all)."""
    import gc

    from orchestration import cli
    from orchestration.child import GC_YOUNG_THRESHOLD
    from tests.pipeline import environment

    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    with environment(tmp_path / "data"):
        assert cli.main(["run", "--job", "ingest"]) == 0
    assert gc.isenabled() and gc.get_threshold() == threshold
    assert gc.get_freeze_count() == frozen
    monkeypatch.setattr(cli, "_WHOLE_PROCESS", True)
    try:
        with environment(tmp_path / "data"):
            assert cli.main(["run", "--job", "ingest"]) == 0
        assert gc.isenabled() and gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gc.enable()
