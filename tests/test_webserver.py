"""The Dagster UI's view of the code location, through a real webserver and its GraphQL API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestration.settings import PROJECT_ROOT

pytestmark = pytest.mark.xdist_group("webserver")

QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name
    schedules { name cronSchedule executionTimezone }
    sensors { name targets { pipelineName } }
    assetNodes { assetKey { path } groupName dependencyKeys { path } }
} } } }
"""


@pytest.fixture(scope="module")
def graphql(tmp_path_factory):
    home = tmp_path_factory.mktemp("web")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DAGSTER_HOME": str(home / "dagster"), "SATUDATA_HOME": str(home / "data")}
    Path(env["DAGSTER_HOME"]).mkdir()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/graphql"

    def query(text: str) -> dict:
        request = urllib.request.Request(
            url, json.dumps({"query": text}).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                data = query(QUERY)
                if data["repositoriesOrError"].get("nodes"):
                    break
            except (OSError, KeyError, TypeError):
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                "webserver did not come up"
            )
            time.sleep(1)
        yield data["repositoriesOrError"]["nodes"][0]
    finally:
        process.terminate()
        process.wait(timeout=30)


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


def test_asset_graph_links_the_landing_sensors_assets_through_dbt_to_the_publication(graphql):
    path = _path(graphql, "raw/households", "publication/published_warehouse")
    assert path is not None
    groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in graphql["assetNodes"]}
    layers = [
        g for i, g in enumerate(groups[k] for k in path) if i == 0 or g != groups[path[i - 1]]
    ]
    assert layers == ["ingestion", "staging", "intermediate", "marts", "publication"]
    [landing] = [s for s in graphql["sensors"] if s["name"] == "landing_sensor"]
    assert [t["pipelineName"] for t in landing["targets"]] == ["ingest"]


def test_nightly_schedule_is_registered_at_two_in_the_morning_wita(graphql):
    [schedule] = graphql["schedules"]
    assert schedule == {
        "name": "nightly_0200_wita",
        "cronSchedule": "0 2 * * *",
        "executionTimezone": "Asia/Makassar",
    }
