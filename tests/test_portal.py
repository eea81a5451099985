"""The portal at the HTTP level, on a real server: every route checks the role and the unit;
every form needs its CSRF token; logins are throttled and audited; passwords are hashed and
never written in clear; uploads are bounded while they stream and land in ``landing/`` the way
a unit's own upload tool writes them; decisions take the CLI's code path and wait for a run."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import time
import zipfile
from pathlib import Path

import duckdb
import httpx
import pytest
from openpyxl import load_workbook

from orchestration.ingest.store import build_lock
from orchestration.portal.accounts import FAILURES_BEFORE_LOCK
from orchestration.portal.app import create_app
from orchestration.publication.publish import PUBLISHED_TABLES
from orchestration.settings import Settings
from tests.portal import PEOPLE, csrf_of, login, password, published_bontang, serving
from tests.submissions import COLUMNS, _csv_text, manifest, register

pytestmark = pytest.mark.xdist_group("portal")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published_bontang(tmp_path_factory.mktemp("portal") / "data")


@pytest.fixture(scope="module")
def base(home: Path):
    with serving(home, portal_max_upload_bytes=2 << 20) as url:
        yield url


@pytest.fixture(scope="module")
def clients(base: str) -> dict[str, tuple[httpx.Client, str]]:
    return {username: login(base, username) for username in PEOPLE}


def report_name(home: Path, unit: str) -> str:
    return next((home / "reports" / unit).glob("*/*.html")).name


def routes_matrix(home: Path) -> dict[tuple[str, str], dict[str, int]]:
    """(method, path) -> {user: status}; a user not named answers like ``default``."""
    period = next((home / "reports" / "review").glob("*/index.html")).parent.name
    unit_view = {"op01": 200, "wali": 200, "wali_prov": 200, "default": 404}
    everyone = {"default": 200}
    return {
        ("GET", "/"): {"default": 303},
        ("GET", "/units/64.74.01"): unit_view,
        ("GET", f"/units/64.74.01/reports/{report_name(home, '64.74.01')}"): unit_view,
        ("GET", "/units/64.74.02"): {"op02": 200, "wali": 200, "wali_prov": 200, "default": 404},
        ("GET", "/units/64.99.99"): {"default": 404},
        ("GET", "/regions/64.74"): {"wali": 200, "wali_prov": 200, "default": 404},
        ("GET", "/regions/64"): {"wali_prov": 200, "default": 404},
        ("GET", "/publication"): everyone,
        ("GET", "/publication/bulletin"): everyone,
        ("GET", f"/publication/review/{period}/index.html"): everyone,
        ("GET", f"/publication/review/{period}/64.74.html"): everyone,
        ("GET", "/publication/tables/fct_poverty.csv"): everyone,
        ("GET", "/publication/workbook.xlsx"): everyone,
        # the forms: with a valid token, but the wrong person (the right one is in the story)
        ("POST", "/units/64.74.01/upload"): {
            "wali": 403,
            "wali_prov": 403,
            "op01": 400,
            "default": 404,
        },
        ("POST", "/units/64.74.01/decisions"): {
            "wali": 403,
            "wali_prov": 403,
            "op01": 400,
            "default": 404,
        },
        ("POST", "/regions/64.74/decisions"): {"wali": 400, "wali_prov": 400, "default": 404},
        ("POST", "/logout"): {"default": 303},
    }


ROUTE_SHAPES = {  # every route of the app, as the matrix above covers it
    "/",
    "/login",
    "/logout",
    "/units/{unit}",
    "/units/{unit}/upload",
    "/units/{unit}/decisions",
    "/units/{unit}/reports/{name}",
    "/regions/{region}",
    "/regions/{region}/decisions",
    "/publication",
    "/publication/bulletin",
    "/publication/review/{period}/{page}",
    "/publication/tables/{table}.csv",
    "/publication/workbook.xlsx",
}


def test_every_route_is_in_the_matrix(home):
    app = create_app(Settings(home))
    assert {route.path for route in app.routes} == ROUTE_SHAPES


def test_role_by_route_matrix(home, base, clients):
    matrix = routes_matrix(home)
    wrong = []
    for (method, path), expected in matrix.items():
        if path == "/logout":
            continue  # would end the sessions the other rows use: tested below
        for username, (client, csrf) in clients.items():
            want = expected.get(username, expected["default"])
            data = {"csrf": csrf, "action": "nonsense", "period": "2025-03"}
            answer = client.get(path) if method == "GET" else client.post(path, data=data)
            if answer.status_code != want:
                wrong.append((username, method, path, answer.status_code, want))
    assert wrong == []


def test_nobody_logged_in_is_sent_to_the_login_page_by_every_route(home, base):
    anonymous = httpx.Client(base_url=base, follow_redirects=False)
    for method, path in routes_matrix(home):
        answer = anonymous.request(method, path, data={"csrf": "x"})
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path


def test_another_units_data_never_reaches_an_operator(home, clients):
    client, _ = clients["op02"]
    for path in (
        "/units/64.74.01",
        f"/units/64.74.01/reports/{report_name(home, '64.74.01')}",
        "/units/64.74.02/reports/" + report_name(home, "64.74.01"),  # another unit's file name
        "/units/64.74.02/reports/..%2F64.74.01%2F" + report_name(home, "64.74.01"),
        "/units/64.74.02/reports/%2e%2e",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "Bontang Utara" not in answer.text


def test_every_form_refuses_a_request_without_its_csrf_token(home, base, clients):
    matrix = routes_matrix(home)
    for username in ("op01", "wali"):
        client, csrf = clients[username]
        for (method, path), expected in matrix.items():
            if method != "POST":
                continue
            # a form the person may not use at all stays 404; every other one wants its token
            want = 404 if expected.get(username, expected["default"]) == 404 else 403
            for data in ({}, {"csrf": "not-the-token"}, {"csrf": csrf[:-1]}):
                answer = client.post(path, data={**data, "action": "confirm", "period": "2025-03"})
                assert answer.status_code == want, (username, path, data, answer.status_code)
    # the login form too: no token cookie, or another token
    fresh = httpx.Client(base_url=base)
    assert (
        fresh.post("/login", data={"username": "op01", "password": password("op01")}).status_code
        == 403
    )
    fresh.get("/login")
    assert (
        fresh.post(
            "/login", data={"csrf": "other", "username": "op01", "password": password("op01")}
        ).status_code
        == 403
    )
    # the upload form as multipart
    client, _ = clients["op01"]
    files = {"keluarga": ("keluarga.csv", b"x")}
    assert client.post("/units/64.74.01/upload", files=files, data={}).status_code == 403
    assert not list((home / "landing").iterdir())


def test_security_headers_and_cookie_flags(base):
    client = httpx.Client(base_url=base)
    page = client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp.replace("default-src", "")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert "<script" not in page.text.lower()
    behind_tls = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "secure" in behind_tls.headers["set-cookie"].lower()


def test_repeated_failed_logins_lock_the_account_and_are_audited(home, base):
    client = httpx.Client(base_url=base)
    wrong = "salah-sekali-12345"
    for _ in range(FAILURES_BEFORE_LOCK):
        token = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login", data={"csrf": token, "username": "reader", "password": wrong}
        )
        assert answer.status_code == 401
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login", data={"csrf": token, "username": "reader", "password": password("reader")}
    )
    assert answer.status_code == 401  # the right password, but the account is locked
    con = sqlite3.connect(home / "portal" / "portal.sqlite")
    events = [e for (e,) in con.execute("select event from audit where username = 'reader'")]
    assert events.count("login_failed") == FAILURES_BEFORE_LOCK - 1
    assert "account_locked" in events and "login_refused" in events
    con.execute("update users set locked_until = null where username = 'reader'")  # time passes
    con.commit()
    assert login(base, "reader")[0].get("/publication").status_code == 200


def test_passwords_are_hashed_and_never_written_in_clear(home, base, clients):
    stored = (home / "portal" / "portal.sqlite").read_bytes()
    everything = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    for username in PEOPLE:
        assert password(username).encode() not in everything
    assert stored.count(b"$argon2id$") >= len(PEOPLE)


def upload(client: httpx.Client, csrf: str, unit: str = "64.74.01", **parts):
    files = {k: v for k, v in parts.items() if isinstance(v, tuple)}
    data = {"csrf": csrf, **{k: v for k, v in parts.items() if isinstance(v, str)}}
    return client.post(f"/units/{unit}/upload", files=files, data=data)


def csv_files(unit: str) -> dict[str, tuple[str, bytes]]:
    data = register(unit, households=5)
    return {
        t: (f"../../{t}.csv", _csv_text(data[t], c, ",", None).encode()) for t, c in COLUMNS.items()
    }


def landed(home: Path) -> list[Path]:
    return sorted(p for p in (home / "landing").iterdir())


def clear_landing(home: Path) -> None:
    import shutil

    for entry in (home / "landing").iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def test_an_upload_lands_as_a_unit_upload_tool_writes_it(home, clients):
    client, csrf = clients["op01"]
    answer = upload(
        client, csrf, **csv_files("64.74.01"), periode="2025-04", catatan="lewat portal"
    )
    assert answer.status_code == 303
    (entry,) = landed(home)
    assert re.fullmatch(r"64\.74\.01_2025-04_web\d{8}T\d{6}_[0-9a-f]{12}", entry.name)
    assert sorted(p.name for p in entry.iterdir()) == sorted(
        ["keluarga.csv", "anggota.csv", "bantuan.csv", "manifest.json"]
    )
    written = json.loads((entry / "manifest.json").read_text())
    assert written["kode_wilayah"] == "64.74.01" and written["periode"] == "2025-04"
    assert written["dikirim_pada"].endswith("+08:00") and written["catatan"] == "lewat portal"
    page = client.get("/units/64.74.01").text
    assert entry.name in page and "received" in page
    con = sqlite3.connect(home / "portal" / "portal.sqlite")
    assert con.execute("select count(*) from audit where event = 'upload'").fetchone()[0] >= 1
    clear_landing(home)


def test_a_zip_lands_complete_and_ingestion_takes_it_like_any_units_zip(home, clients):
    from orchestration.ingest.landing import is_ready
    from orchestration.ingest.pipeline import Ingestor
    from tests.pipeline import environment

    client, csrf = clients["op02"]
    data = register("64.74.02", households=5)
    members = {
        f"kiriman/{t}.csv": _csv_text(data[t], c, ",", None).encode() for t, c in COLUMNS.items()
    }
    members["kiriman/manifest.json"] = json.dumps(manifest("64.74.02", period="2025-05")).encode()
    answer = upload(client, csrf, "64.74.02", archive=("../../x.zip", zipped(members)))
    assert answer.status_code == 303
    (entry,) = landed(home)
    assert entry.name.startswith("64.74.02_2025-05_web") and entry.suffix == ".zip"
    assert is_ready(entry)
    with environment(home):  # the key the fixture's warehouse was built with
        [outcome] = Ingestor(Settings(home)).run()
    assert (outcome.status, outcome.reason_code) == ("accepted", None), outcome
    assert landed(home) == []
    assert "64.74.02_2025-05_web" in client.get("/units/64.74.02").text


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def linked_zip(manifest_bytes: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", manifest_bytes)
        link = zipfile.ZipInfo("keluarga.csv")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "case",
    [
        "manifest of another unit",
        "zip of another unit",
        "zip without manifest",
        "zip with too many members",
        "damaged zip",
        "manifest not json",
        "period not a month",
        "two CSVs only",
        "zip and files",
        "zip bomb",
        "zip with a symbolic link",
    ],
)
def test_a_hostile_upload_is_refused_and_nothing_lands(home, clients, case):
    client, csrf = clients["op01"]
    other = json.dumps(manifest("64.74.02")).encode()
    own = json.dumps(manifest("64.74.01")).encode()
    files = csv_files("64.74.01")
    parts = {
        "manifest of another unit": {**files, "manifest": ("manifest.json", other)},
        "zip of another unit": {"archive": ("a.zip", zipped({"manifest.json": other}))},
        "zip without manifest": {"archive": ("a.zip", zipped({"keluarga.csv": b"x"}))},
        "zip with too many members": {
            "archive": (
                "a.zip",
                zipped({"manifest.json": own, **{f"{i}.txt": b"" for i in range(150)}}),
            )
        },
        "damaged zip": {"archive": ("a.zip", b"PK\x03\x04 not really")},
        "manifest not json": {**files, "manifest": ("manifest.json", b"{kode_wilayah")},
        "period not a month": {**files, "periode": "2025-13"},
        "two CSVs only": {
            "keluarga": files["keluarga"],
            "anggota": files["anggota"],
            "periode": "2025-04",
        },
        "zip and files": {**files, "archive": ("a.zip", zipped({"manifest.json": own}))},
        "zip bomb": {
            "archive": ("a.zip", zipped({"manifest.json": own, "keluarga.csv": bytes(64 << 20)}))
        },
        "zip with a symbolic link": {"archive": ("a.zip", linked_zip(own))},
    }[case]
    answer = upload(client, csrf, **parts)
    assert answer.status_code == 400
    assert "Ditolak" in answer.text and "Refused" in answer.text
    assert landed(home) == []
    assert not list(home.parent.glob("*.csv"))  # no name from the browser became a path


def test_an_oversized_upload_is_refused_while_it_streams(home, base, clients):
    client, csrf = clients["op01"]
    big = {"keluarga": ("keluarga.csv", b"0" * (3 << 20))}
    assert upload(client, csrf, **big, periode="2025-04").status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        boundary = b"--b\r\n"
        yield (
            boundary
            + b'Content-Disposition: form-data; name="csrf"\r\n\r\n'
            + csrf.encode()
            + b"\r\n"
        )
        yield (
            boundary + b'Content-Disposition: form-data; name="keluarga"; filename="k.csv"\r\n\r\n'
        )
        for _ in range(64):
            yield b"1" * (64 << 10)
        yield b"\r\n--b--\r\n"

    answer = client.post(
        "/units/64.74.01/upload",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert answer.status_code == 413
    assert landed(home) == []
    assert not [p for p in (home / "landing").glob(".portal-*")]


def test_a_decision_asked_while_a_run_holds_the_build_file_waits_and_is_recorded(home, clients):
    client, csrf = clients["op03"]
    settings = Settings(home)
    with build_lock(settings):
        answer = client.post(
            "/units/64.74.03/decisions",
            data={"csrf": csrf, "action": "confirm", "period": "2025-03", "note": "cocok"},
        )
        assert answer.status_code == 303
        page = client.get("/units/64.74.03").text
        assert "menunggu / waiting" in page and "releases the warehouse" in page
    for _ in range(100):
        page = client.get("/units/64.74.03").text
        if "tercatat / recorded" in page:
            break
        time.sleep(0.1)
    assert "tercatat / recorded" in page
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        assert con.execute(
            "select decided_by, note from raw.signoffs where region_code = '64.74.03'"
        ).fetchall() == [("Andi, Operator Bontang Barat", "cocok")]
    # the same rules as the CLI: a second confirmation of the same submission is refused
    client.post(
        "/units/64.74.03/decisions", data={"csrf": csrf, "action": "confirm", "period": "2025-03"}
    )
    assert "already confirmed" in client.get("/units/64.74.03").text


def test_the_workbook_has_a_sheet_per_table_and_describes_every_column(home, clients, tmp_path):
    client, _ = clients["reader"]
    answer = client.get("/publication/workbook.xlsx")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith('attachment; filename="satudata-')
    path = tmp_path / "book.xlsx"
    path.write_bytes(answer.content)
    book = load_workbook(path)
    assert book.sheetnames == [t[:31] for t in PUBLISHED_TABLES] + ["columns"]
    poverty = book["fct_poverty"]
    header = [c.value for c in poverty[1]]
    assert header[:3] == ["region_code", "level", "period"] or "region_code" in header
    assert poverty.cell(1, 1).comment is not None
    with duckdb.connect(str(home / "warehouse" / "published.duckdb"), read_only=True) as con:
        (count,) = con.execute("select count(*) from fct_poverty").fetchone()
    assert poverty.max_row == count + 1
    described = {
        (r[0], r[1]) for r in book["columns"].iter_rows(min_row=2, values_only=True) if r[3]
    }
    assert ("fct_poverty", "poverty_rate") in described
    assert not list((home / "tmp").glob("*.xlsx"))  # removed once sent


def test_logout_ends_the_session(base):
    client, csrf = login(base, "op02")
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/units/64.74.02").status_code == 303


def test_user_commands_add_list_and_disable(home, base, capsys):
    from orchestration import cli
    from tests.pipeline import environment

    client, _ = login(base, "op_smd")
    with environment(home):
        secret = home.parent / "short.password"
        secret.write_text("pendek\n")
        assert cli.main(["user", "add", "x1", "--name", "X", "--role", "operator", "--scope", "64.72",
                         "--password-file", str(secret)]) == 2  # fmt: skip
        assert "at least 10 characters" in capsys.readouterr().err
        secret.write_text("cukup-panjang-sekali\n")
        for scope, role in (
            ("64.99", "operator"),
            ("64.74.01", "walidata"),
            ("65", "walidata"),
            ("Bontang", "walidata"),
        ):
            args = ["user", "add", "x2", "--name", "X", "--role", role, "--scope", scope]
            assert cli.main([*args, "--password-file", str(secret)]) == 2, scope
        assert cli.main(["user", "list"]) == 0
        listed = capsys.readouterr().out
        assert "op_smd" in listed and "Dewi, Operator Samarinda" in listed
        assert "sandi-" not in listed
        assert cli.main(["user", "disable", "op_smd"]) == 0
    assert client.get("/units/64.72").status_code == 303  # the session ended with it
    fresh = httpx.Client(base_url=base)
    token = csrf_of(fresh.get("/login").text)
    data = {"csrf": token, "username": "op_smd", "password": password("op_smd")}
    assert fresh.post("/login", data=data).status_code == 401
