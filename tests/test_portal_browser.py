"""The forum's story in a real browser (Debian's Chromium, driven by Playwright) against the
portal on a real server: an operator's bad upload is quarantined with its reasons, the fixed
one is accepted and confirmed, the other kecamatan confirm, the walidata sees 3 of 3 and
approves, a reader downloads the workbook and sees Bontang approved, the walidata unlocks.

Every page is taken at desktop width and at a 390-px phone width; none logs a console error
or asks another host for anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from openpyxl import load_workbook

from orchestration import cli
from tests.pipeline import environment
from tests.portal import password, published_bontang, serving
from tests.submissions import COLUMNS, _csv_text, register

pytestmark = pytest.mark.xdist_group("portal_browser")

# .ci/run installs it; without it the story fails (a story skipped proves nothing)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One person's browser; every page is screenshotted at desktop and phone width."""

    def __init__(self, playwright, base: str, shots: Path, who: str):
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        self.context = self.browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.base, self.shots, self.who = base, shots, who
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"{self.page.url}: {m.text}") if m.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "request",
            lambda r: self.hosts.add(urlparse(r.url).netloc) if r.url.startswith("http") else None,
        )

    def goto(self, path: str):
        self.page.goto(self.base + path)
        self.look(path)
        return self.page

    def look(self, label: str) -> None:
        name = f"{self.who}{label}".strip("/").replace("/", "_").replace(".", "-")
        for width in (1280, 390):
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=str(self.shots / f"{name}-{width}.png"), full_page=True)
        self.page.set_viewport_size({"width": 1280, "height": 900})

    def login(self, username: str) -> None:
        self.goto("/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password(username))
        self.page.click("button.primary")
        self.look("/after-login")

    def close(self) -> None:
        assert self.errors == [], self.errors
        assert self.hosts <= {urlparse(self.base).netloc}, self.hosts
        self.browser.close()


def register_files(folder: Path, spoil: bool) -> dict[str, str]:
    """keluarga/anggota/bantuan CSVs of Bontang Utara; spoiled: most NIKs are not NIKs."""
    data = register("64.74.01", households=24)
    for row in data["keluarga"]:
        row["tanggal_verifikasi"] = "2025-03-05"
    for row in data["bantuan"]:
        row["tanggal_salur"] = "2025-03-10"
    if spoil:
        for row in data["anggota"][::2]:
            row["nik"] = row["nik"][:10]
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for table, columns in COLUMNS.items():
        path = folder / f"{table}.csv"
        path.write_text(_csv_text(data[table], columns, ",", None))
        paths[table] = str(path)
    return paths


def run(home: Path, *args: str) -> None:
    with environment(home):
        assert cli.main(["run", *args]) == 0


def test_the_forum_works_in_a_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Debian's chromium is not installed: apt-get install chromium (.ci/run does)"

    home = published_bontang(tmp_path / "data")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serving(home) as base, sync_playwright() as playwright:
        # an operator of 64.74.01 uploads a submission with bad rows
        op01 = Browser(playwright, base, shots, "op01")
        op01.login("op01")
        page = op01.page
        assert page.url.endswith("/units/64.74.01")
        for field, path in register_files(tmp_path / "bad", spoil=True).items():
            page.set_input_files(f"input[name={field}]", path)
        page.fill("input[name=periode]", "2025-03")
        page.click('button:has-text("Kirim / Upload")')
        op01.look("/units/64.74.01-uploaded")
        assert "Kiriman diterima" in page.content()
        assert page.locator("span.badge.received").count() == 1

        # the ingest job (the sensor's job) quarantines it: the page says why, the report too
        run(home, "--job", "ingest")
        op01.goto("/units/64.74.01")
        assert page.locator("span.badge.quarantined").count() == 1
        assert "More than 10 %" in page.content()
        report = page.locator("a", has_text="laporan / report").first.get_attribute("href")
        op01.goto(report)
        assert "NIK" in page.content(), page.url

        # the fixed submission, then the night: accepted and published; the operator confirms
        op01.goto("/units/64.74.01")
        for field, path in register_files(tmp_path / "fixed", spoil=False).items():
            page.set_input_files(f"input[name={field}]", path)
        page.fill("input[name=periode]", "2025-03")
        page.click('button:has-text("Kirim / Upload")')
        run(home)
        op01.goto("/units/64.74.01")
        assert page.locator("span.badge.accepted").count() >= 1
        page.fill("form.inline input[name=note]", "Sudah dicek / checked")
        page.click('button:has-text("Konfirmasi / Confirm")')
        op01.look("/units/64.74.01-confirmed")
        assert "tercatat / recorded" in page.content(), page.inner_text("main")[-1500:]
        op01.close()

        # the other two Bontang operators confirm
        for username, unit in (("op02", "64.74.02"), ("op03", "64.74.03")):
            operator = Browser(playwright, base, shots, username)
            operator.login(username)
            operator.page.click('button:has-text("Konfirmasi / Confirm")')
            assert "tercatat / recorded" in operator.page.content(), unit
            operator.close()

        # the night publishes the confirmations; the walidata of 64.74 sees 3 of 3 and approves
        run(home)
        wali = Browser(playwright, base, shots, "wali")
        wali.login("wali")
        assert wali.page.url.endswith("/regions/64.74")
        assert "3 dari / of 3" in wali.page.content()
        wali.page.fill("form.inline input[name=note]", "Disetujui forum 2025-04-10")
        wali.page.click('button:has-text("Setujui / Approve")')
        wali.look("/regions/64.74-approved")
        assert "tercatat / recorded" in wali.page.content()

        # the night publishes the approval; a reader downloads the workbook and sees it
        run(home)
        reader = Browser(playwright, base, shots, "reader")
        reader.login("reader")
        assert reader.page.url.endswith("/publication")
        reader.goto("/publication/bulletin")
        reader.goto("/publication")
        with reader.page.expect_download() as download:
            reader.page.click("text=Satu buku kerja / one workbook (.xlsx)")
        book_path = tmp_path / "satudata.xlsx"
        download.value.save_as(book_path)
        poverty = load_workbook(book_path)["fct_poverty"]
        header = [c.value for c in poverty[1]]
        bontang = [
            dict(zip(header, row, strict=True))
            for row in poverty.iter_rows(min_row=2, values_only=True)
            if row[header.index("region_code")] == "64.74"
            and row[header.index("period")] == "2025-03"
        ]
        assert [r["approval_status"] for r in bontang] == ["approved"]
        reader.close()

        # the walidata unlocks with a reason
        wali.goto("/regions/64.74")
        assert "Buka kunci / Unlock" in wali.page.content()
        wali.page.fill("form.inline input[name=note]", "Revisi data Bontang Barat")
        wali.page.click('button:has-text("Buka kunci / Unlock")')
        wali.look("/regions/64.74-unlocked")
        assert wali.page.locator("span.badge.recorded").count() >= 2
        wali.close()
    assert len(list(shots.glob("*-390.png"))) >= 12
