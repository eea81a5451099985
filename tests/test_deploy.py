"""The deployment of docs/operations.md ("Deploy") on this machine: a real PostgreSQL server
(Debian's, a throwaway cluster run as the ``postgres`` user), Dagster's storage in it through
``deploy/dagster.yaml``, the daemon and the webserver started with the exact commands of the
systemd units. The landing sensor starts the ingestion run through the daemon, the nightly
run is launched from the UI and taken off the queue by the daemon, and ``satudata status``
reads both back from PostgreSQL."""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pipeline import add_submissions, environment

pytestmark = pytest.mark.xdist_group("deploy")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
# (.ci/run installs PostgreSQL; without it the fixture fails: a deployment skipped proves nothing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


@pytest.fixture(scope="module")
def postgres_url():
    assert PG_BIN and (PG_BIN / "initdb").exists(), "apt-get install postgresql (.ci/run does)"
    folder = Path(tempfile.mkdtemp(prefix="satudata-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"
        ),
        **run,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ),
        **run,
    )
    try:
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "dagster",
            ),
            **run,
        )
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/dagster"
    finally:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def unit_command(name: str) -> list[str]:
    """The ExecStart of a unit in deploy/systemd, with the install path this checkout's."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(PROJECT_ROOT / "deploy" / "systemd" / name)
    line = parser["Service"]["ExecStart"].replace("/srv/satudata/app", str(PROJECT_ROOT))
    return shlex.split(line)


def graphql(url: str, text: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": text, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert "errors" not in answer, answer
    return answer["data"]


RUNS = "{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }"
LAUNCH = """mutation L($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def _wait(what: str, condition, seconds: float, logs: list[Path]):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            found = condition()
            if found:
                return found
        time.sleep(2)
    raise AssertionError(
        f"{what} did not happen:\n" + "\n".join(p.read_text()[-3000:] for p in logs)
    )


def test_the_daemon_and_the_ui_run_the_pipeline_with_postgresql_storage(
    tmp_path, postgres_url, capsys
):
    home = tmp_path / "data"
    add_submissions(home)  # two Bontang kecamatan waiting in landing/
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV",)},
        "SATUDATA_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "SATUDATA_DAGSTER_POSTGRES_URL": postgres_url,
        "SATUDATA_PSEUDONYM_KEY": "pipeline-test-key",
    }
    webserver = unit_command("satudata-dagster-webserver.service")
    webserver[webserver.index("-p") + 1] = str(port)
    logs = [tmp_path / "daemon.log", tmp_path / "webserver.log"]
    processes = [
        subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=open(log, "w"),  # noqa: SIM115 - the child writes it until it is stopped
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for command, log in zip(
            [unit_command("satudata-dagster-daemon.service"), webserver], logs, strict=True
        )
    ]
    url = f"http://127.0.0.1:{port}/dagster/graphql"
    try:
        # the landing sensor, evaluated by the daemon, starts the ingestion run
        def ingested():
            runs = graphql(url, RUNS)["runsOrError"]["results"]
            done = [r for r in runs if r["jobName"] == "ingest" and r["status"] == "SUCCESS"]
            tags = {t["key"] for r in done for t in r["tags"]}
            return done if "dagster/sensor_name" in tags else None

        _wait("an ingestion run started by the landing sensor", ingested, 300, logs)
        # the nightly run, launched from the UI: queued, then started by the daemon
        params = {
            "selector": {
                "repositoryLocationName": "orchestration.defs.definitions",
                "repositoryName": "__repository__",
                "jobName": "nightly",
            },
            "runConfigData": {},
        }
        launched = graphql(url, LAUNCH, {"p": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def finished():
            runs = graphql(url, RUNS)["runsOrError"]["results"]
            status = next(r["status"] for r in runs if r["runId"] == run_id)
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        assert _wait("the nightly run", finished, 400, logs) == "SUCCESS"
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    # nothing of Dagster's storage in SQLite under the data root: it is all in PostgreSQL
    assert not list(dagster_home.rglob("*.db"))
    assert (home / "warehouse" / "published.duckdb").exists()
    from orchestration import cli

    with environment(
        home, SATUDATA_DAGSTER_POSTGRES_URL=postgres_url
    ):  # DAGSTER_HOME: home/dagster
        assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"Last run {run_id} (nightly, Dagster UI) succeeded" in out, out
    assert "64.74.01" in out and "accepted" in out
