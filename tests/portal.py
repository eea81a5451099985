"""The portal on a real uvicorn server on a loopback port, over a data root that Kota Bontang's
three kecamatan have sent and the real pipeline has published; people added with the CLI."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from orchestration import cli
from orchestration.portal.app import create_app
from orchestration.settings import Settings
from tests.pipeline import environment, run_pipeline
from tests.submissions import manifest, register, write_submission

UNITS = ("64.74.01", "64.74.02", "64.74.03")
PEOPLE = {  # username: (full name, role, scope)
    "op01": ("Rina, Operator Bontang Utara", "operator", "64.74.01"),
    "op02": ("Sari, Operator Bontang Selatan", "operator", "64.74.02"),
    "op03": ("Andi, Operator Bontang Barat", "operator", "64.74.03"),
    "op_smd": ("Dewi, Operator Samarinda", "operator", "64.72"),
    "wali": ("Budi, Walidata Bappeda Bontang", "walidata", "64.74"),
    "wali_smd": ("Agus, Walidata Samarinda", "walidata", "64.72"),
    "wali_prov": ("Nur, Walidata Provinsi", "walidata", "64"),
    "reader": ("Hendra, Pembaca", "reader", None),
}


def password(username: str) -> str:
    return f"sandi-{username}-rahasia"


VILLAGES = {"64.74.03": ["64.74.03.1001", "64.74.03.1002", "64.74.03.1003"]}


def send(home: Path, unit: str, period: str = "2025-03", sent="2025-04-03T09:00:00+08:00"):
    data = register(unit, households=20, villages=VILLAGES.get(unit))
    for row in data["keluarga"]:
        row["tanggal_verifikasi"] = f"{period}-05"
    for row in data["bantuan"]:
        row["tanggal_salur"] = f"{period}-10"
    write_submission(
        home / "landing", f"{unit}-{period}", data, manifest(unit, period=period, sent=sent)
    )


def published_bontang(home: Path) -> Path:
    for unit in UNITS:
        send(home, unit)
    assert run_pipeline(home) == 0
    with environment(home):
        for username, (name, role, scope) in PEOPLE.items():
            secret = home.parent / f"{username}.password"
            secret.write_text(password(username) + "\n")
            args = ["user", "add", username, "--name", name, "--role", role]
            args += ["--scope", scope] if scope else []
            assert cli.main([*args, "--password-file", str(secret)]) == 0
            secret.unlink()
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(home: Path, **settings) -> Iterator[str]:
    """The portal of ``home`` on a loopback port, for as long as the block runs."""
    app = create_app(Settings(home.resolve(), **settings))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the portal did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(base: str, username: str, secret: str | None = None) -> tuple[httpx.Client, str]:
    """A logged-in client and its session's CSRF token."""
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"csrf": token, "username": username, "password": secret or password(username)},
    )
    assert answer.status_code == 303, answer.text[:300]
    page = client.get("/publication")
    return client, csrf_of(page.text)
