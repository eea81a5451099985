"""The Dagster UI as a user starts it: `make dev` (the venv not on PATH), its GraphQL API, a run
of the nightly job launched from it, and `satudata status` telling what that run did."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from orchestration import cli
from orchestration.settings import PROJECT_ROOT
from tests.pipeline import add_submissions, environment

pytestmark = pytest.mark.xdist_group("webserver")

LOCATION = "orchestration.defs.definitions"
REPOSITORY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name
    schedules { name cronSchedule executionTimezone }
    sensors { name targets { pipelineName } }
    assetNodes { assetKey { path } groupName dependencyKeys { path } }
} } } }
"""
WORKSPACE = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
} }
"""
RUN = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
RUNS = """{ runsOrError { ... on Runs { results {
    runId jobName status endTime tags { key value }
} } } }"""


class UI:
    def __init__(self, url: str):
        self.url = url

    def query(self, text: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    home = tmp_path_factory.mktemp("web") / "data"
    add_submissions(home)  # two kecamatan of Bontang waiting in landing/
    with socket.socket() as s, socket.socket() as s2:
        s.bind(("127.0.0.1", 0))
        s2.bind(("127.0.0.1", 0))
        port, portal_port = s.getsockname()[1], s2.getsockname()[1]
    venv_bin = str(PROJECT_ROOT / ".venv" / "bin")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DAGSTER_HOME")}
    env.update(PATH=path, SATUDATA_HOME=str(home), SATUDATA_PSEUDONYM_KEY="pipeline-test-key")
    log = open(home.parent / "make-dev.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        ["make", "dev", f"DEV_PORT={port}", f"PORTAL_PORT={portal_port}"], cwd=PROJECT_ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    ui = UI(f"http://127.0.0.1:{port}/graphql")
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                [entry] = ui.query(WORKSPACE)["workspaceOrError"]["locationEntries"]
                if entry["loadStatus"] == "LOADED":
                    break
            except (OSError, KeyError, TypeError, ValueError):
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                "make dev did not bring the UI up:\n"
                + (home.parent / "make-dev.log").read_text()[-3000:]
            )
            time.sleep(1)
        ui.home = home
        ui.location = entry
        ui.portal = f"http://127.0.0.1:{portal_port}"
        yield ui
    finally:
        _stop_session(process)
        log.close()


def _session(sid: int) -> list[int]:
    """The live processes of session ``sid``: make, dagster dev and what it started."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[3]) == sid and stat[0] != "Z":  # (fields: state, ppid, pgrp, session)
                    found.append(int(proc.name))
    return found


def _stop_session(process: subprocess.Popen) -> None:
    """Stop the UI as a user does (Ctrl-C), then make sure nothing of it is left running."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _session(process.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in _session(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def test_make_dev_serves_the_portal_beside_the_ui(ui):
    with urllib.request.urlopen(ui.portal + "/login", timeout=30) as response:
        assert response.status == 200
        assert "Portal Forum Satu Data" in response.read().decode()
        assert "script-src" not in response.headers["Content-Security-Policy"]


def test_make_dev_loads_the_code_location_without_error(ui):
    assert ui.location["name"] == LOCATION
    assert ui.location["locationOrLoadError"]["__typename"] == "RepositoryLocation", ui.location


def _path(repository: dict, start: str, end: str) -> list[str] | None:
    children: dict[str, list[str]] = {}
    for node in repository["assetNodes"]:
        key = "/".join(node["assetKey"]["path"])
        for dep in node["dependencyKeys"]:
            children.setdefault("/".join(dep["path"]), []).append(key)
    todo, seen = [[start]], {start}
    while todo:
        path = todo.pop(0)
        if path[-1] == end:
            return path
        for child in children.get(path[-1], []):
            if child not in seen:
                seen.add(child)
                todo.append([*path, child])
    return None


def test_asset_graph_links_the_landing_sensors_assets_through_dbt_to_the_publication(ui):
    [repository] = ui.query(REPOSITORY)["repositoriesOrError"]["nodes"]
    path = _path(repository, "raw/households", "publication/published_warehouse")
    assert path is not None
    groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in repository["assetNodes"]}
    layers = [
        g for i, g in enumerate(groups[k] for k in path) if i == 0 or g != groups[path[i - 1]]
    ]
    assert layers == ["ingestion", "staging", "intermediate", "marts", "publication"]
    [landing] = [s for s in repository["sensors"] if s["name"] == "landing_sensor"]
    assert [t["pipelineName"] for t in landing["targets"]] == ["ingest"]
    [schedule] = repository["schedules"]
    assert schedule == {
        "name": "nightly_0200_wita",
        "cronSchedule": "0 2 * * *",
        "executionTimezone": "Asia/Makassar",
    }


def test_the_nightly_job_launched_from_the_ui_succeeds_and_status_tells(ui, capsys):
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "nightly",
        },
        "runConfigData": {},
    }
    launched = ui.query(LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 400
    status = None
    while time.monotonic() < deadline:
        status = ui.query(RUN, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert status == "SUCCESS"
    assert (ui.home / "warehouse" / "published.duckdb").exists()
    # the landing sensor may have started an ingest run of the same submissions meanwhile:
    # status shows whichever finished last, with who started it
    while True:
        runs = ui.query(RUNS)["runsOrError"]["results"]
        if all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
            break
        assert time.monotonic() < deadline
        time.sleep(2)
    last = max(runs, key=lambda r: r["endTime"])
    tags = {t["key"]: t["value"] for t in last["tags"]}
    by = f"sensor {tags['dagster/sensor_name']}" if "dagster/sensor_name" in tags else "Dagster UI"
    with environment(ui.home):
        assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"Last run {last['runId']} ({last['jobName']}, {by}) succeeded" in out
    assert last["runId"] == run_id or last["jobName"] == "ingest"
