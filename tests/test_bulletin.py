"""The forum's bulletin, built from the demo data by the real pipeline: its figures are the
published tables', it shows approval status, it is linked from Dagster and `satudata status`,
and it loads in headless Chromium with no console error and no network request."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration import cli
from orchestration.pages import number, percent, signed
from tests.pipeline import copy_home, environment

pytestmark = pytest.mark.xdist_group("bulletin")
LATEST = "2025-03"


class Sections(HTMLParser):
    """section id -> its tables' rows (each a list of cell texts); and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[list[str]]] = {}
        self.tags: list[tuple[str, dict]] = []
        self._section: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "section":
            self._section = attrs.get("id")
            self.sections.setdefault(self._section, [])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.sections[self._section].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> Sections:
    parser = Sections()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def rows(home: Path, sql: str, params: list | None = None) -> list[dict]:
    con = duckdb.connect(str(home / "warehouse" / "published.duckdb"), read_only=True)
    try:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo submissions of February and March 2025, published once."""
    home = tmp_path_factory.mktemp("bulletin") / "data"
    with environment(home):
        assert cli.main(["demo-data", "--period", "2025-02"]) == 0
        assert cli.main(["demo-data", "--period", LATEST]) == 0
        assert cli.main(["run"]) == 0
    return home


def row_of(table: list[list[str]], code: str) -> list[str]:
    found = [r for r in table if r and f"({code})" in r[0]]
    assert len(found) == 1, (code, table)
    return found[0]


def test_bulletin_figures_are_the_published_tables(demo: Path) -> None:
    bulletin = demo / "warehouse" / "bulletin.html"
    (current,) = rows(demo, "select max(publication_id) as id from publication_log")
    assert bulletin.resolve() == (
        demo / "warehouse" / "publications" / current["id"] / "bulletin.html"
    )
    page = parse(bulletin)
    text = bulletin.read_text(encoding="utf-8")
    assert f"periode {LATEST}" in text and "Poverty bulletin" in text  # Indonesian and English

    # P0, P1, P2, extreme poverty and status per regency and the province, formatted 3,73 %
    poverty = rows(
        demo,
        "select * from fct_poverty where period = ? and level in ('regency', 'province')",
        [LATEST],
    )
    assert len(poverty) == 10
    for r in poverty:
        cells = row_of(page.sections["wilayah"], r["region_code"])
        assert cells[1:8] == [
            percent(r["poverty_rate"]),
            number(r["poverty_gap_index"], 3),
            number(r["poverty_severity_index"], 3),
            percent(r["extreme_poverty_rate"]),
            number(r["households"]),
            number(r["population"]),
            f"{r['reporting_units']} / {r['expected_units']}",
        ]
        assert "sementara / provisional" in cells[8]
    assert "," in percent(poverty[0]["poverty_rate"])  # the Indonesian decimal comma

    # register against BPS
    for r in rows(demo, "select * from fct_reconciliation where period = ?", [LATEST]):
        names = rows(demo, "select region_name from dim_region where region_code = ?",
                     [r["region_code"]])  # fmt: skip
        (cells,) = [c for c in page.sections["bps"] if c and c[0] == names[0]["region_name"]]
        assert cells[1:4] == [
            percent(r["register_poverty_rate"]),
            percent(r["bps_poverty_rate"]),
            signed(r["difference_points"]),
        ]
        assert cells[6] == "sementara / provisional"  # every figure says whether approved

    # completeness: every unit × period as fct_submission_status has it
    grid = {r[0]: r[1:] for r in page.sections["kelengkapan"][1:]}
    status = {
        (r["unit_code"], r["period"]): r["status"]
        for r in rows(
            demo,
            "select unit_code, period, status from fct_submission_status "
            "where status in ('accepted', 'missing', 'quarantined')",
        )
    }
    words = {"accepted": "✔ diterima", "missing": "– belum", "quarantined": "✖ karantina"}
    assert len(grid) == 12
    for (unit, period), state in status.items():
        (cells,) = [c for label, c in grid.items() if f"({unit})" in label]
        assert cells[["2025-02", LATEST].index(period)] == words[state]

    # targets: one row per target and region, with value, gap and whether on track
    targets = rows(demo, "select * from fct_target_progress where period = ?", [LATEST])
    assert {t["target_id"] for t in targets} == {
        "extreme_poverty_zero_2026",
        "rpjp_poverty_rate_range",
        "uep_grants_2025",
    }
    table = page.sections["target"][1:]
    assert len(table) == len(targets) == 21  # 10 regions × 2 rate targets + the province's UEP
    province_p0 = next(
        t
        for t in targets
        if t["target_id"] == "rpjp_poverty_rate_range" and t["level"] == "province"
    )
    (cells,) = [c for c in table if c[0].startswith("P0") and c[1] == "Kalimantan Timur"]
    assert cells[2:5] == [percent(province_p0["value"]), "3,5–5,0 %", signed(province_p0["gap"])]
    assert ("tercapai" in cells[5]) == (province_p0["status"] == "met")
    assert cells[6] == "sementara / provisional"

    # program coverage with inclusion and exclusion errors
    for c in rows(
        demo,
        "select * from fct_program_coverage where period = ? and program_code = 'ANY' "
        "and level in ('regency', 'province')",
        [LATEST],
    ):
        (cells,) = [
            r for r in page.sections["program"]
            if r[1:2] == ["ANY"] and r[2] == number(c["recipient_households"])
            and r[5:8] == [percent(c["coverage_rate"], 1), percent(c["inclusion_error_rate"], 1),
                           percent(c["exclusion_error_rate"], 1)]
        ]  # fmt: skip

    # data-quality issues of the regencies and the province
    issues = rows(
        demo,
        "select * from fct_data_quality where period = ? and affected_rows > 0 "
        "and level in ('regency', 'province')",
        [LATEST],
    )
    assert len(page.sections["kualitas"]) - 1 == len(issues) > 0

    # charts drawn here, embedded: nothing for the browser to fetch
    assert text.count("<svg") == 5
    fetching = [
        (t, a)
        for t, a in page.tags
        if t in ("script", "link", "img", "iframe") and a.get("href") != "data:,"  # no favicon
    ]
    assert fetching == []
    assert not [a for _, a in page.tags if any(k in ("src", "srcset") for k in a)]


def test_approval_shows_in_the_bulletin_dagster_links_it_and_rollback_restores_it(
    demo: Path, tmp_path: Path, capsys
) -> None:
    home = copy_home(demo, tmp_path / "data")
    with environment(home):
        first = (home / "warehouse" / "bulletin.html").resolve()
        for unit in ("64.74.01", "64.74.02", "64.74.03"):
            assert cli.main(["confirm", unit, LATEST, "--by", f"Operator {unit}"]) == 0
        assert cli.main(["approve", "64.74", LATEST, "--by", "Walidata Bappeda Bontang"]) == 0
        assert cli.main(["run"]) == 0
        bulletin = (home / "warehouse" / "bulletin.html").resolve()
        assert bulletin != first
        cells = row_of(parse(bulletin).sections["wilayah"], "64.74")
        assert "disetujui / approved" in cells[8] and "Walidata Bappeda Bontang" in cells[8]
        assert "sementara / provisional" in row_of(parse(bulletin).sections["wilayah"], "64")[8]
        # ... and in every table: the targets' rows of Kota Bontang, its coverage, its BPS row
        page = parse(bulletin)
        bontang = [r for r in page.sections["target"] if r[1:2] == ["Kota Bontang"]]
        assert len(bontang) == 2 and all(r[6] == "disetujui / approved" for r in bontang)
        assert [r[-1] for r in page.sections["bps"] if r[0] == "Kota Bontang"] == [
            "disetujui / approved"
        ]
        coverage = [r[-1] for r in page.sections["program"] if r[0] == "Kota Bontang"]
        assert coverage and set(coverage) == {"disetujui / approved"}

        # the publication's metadata in Dagster links the bulletin; satudata status prints it
        instance = dg.DagsterInstance.get()
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["publication", "published_warehouse"])
        )
        metadata = event.asset_materialization.metadata
        assert metadata["bulletin"].value == bulletin.as_uri()
        capsys.readouterr()
        assert cli.main(["status"]) == 0
        assert f"Bulletin:            {bulletin.as_uri()}" in capsys.readouterr().out

        assert cli.main(["rollback"]) == 0
        assert (home / "warehouse" / "bulletin.html").resolve() == first


def test_bulletin_loads_in_headless_chromium_offline(demo: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "headless Chromium is needed to check the bulletin (apt-get install chromium)"
    page = (demo / "warehouse" / "bulletin.html").resolve()
    netlog, shot = tmp_path / "net.json", tmp_path / "bulletin.png"
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--log-net-log={netlog}", "--window-size=1200,3000", f"--screenshot={shot}",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "TZ": "Asia/Makassar"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # something was drawn
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # requests the page made (the browser's own update and time checks are not the page's)
    from_page = [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start and "file://" in e["params"].get("network_isolation_key", "")
    ]
    assert [url for url in from_page if not url.startswith("file:")] == []


class _Tables(HTMLParser):
    """Each table's header row and last row, as text per cell."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_the_bulletin_prints_on_a4_with_every_column(demo: Path, tmp_path: Path) -> None:
    """Printed to PDF by headless Chromium (A4): each table's last column, its header and the
    last row's cell (the approval status, mostly), is in the PDF's text."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    pdftotext = shutil.which("pdftotext")
    assert browser and pdftotext, (
        "Chromium and pdftotext are needed (apt-get install chromium poppler-utils)"
    )
    page = (demo / "warehouse" / "bulletin.html").resolve()
    pdf = tmp_path / "bulletin.pdf"
    printed = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert printed.returncode == 0 and pdf.exists(), printed.stderr[-2000:]
    text = subprocess.run([pdftotext, str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    squeezed = "".join(text.split())
    parser = _Tables()
    parser.feed(page.read_text(encoding="utf-8"))
    assert len(parser.tables) >= 5
    for rows in parser.tables:
        header, last = rows[0], rows[-1]
        for cell in (header[-1], last[-1]):
            assert "".join(cell.split()) in squeezed, (header, cell)
    assert "sementara/provisional" in squeezed


def _drawn(monkeypatch):
    """The matplotlib figures the bulletin draws, instead of their SVG."""
    from orchestration.publication import bulletin

    figures = []

    def keep(figure):
        figure.canvas.draw()
        figures.append(figure)
        return "<svg/>"

    monkeypatch.setattr(bulletin, "_svg", keep)
    return bulletin, figures


def test_a_legend_stands_beside_the_bars_never_over_them(monkeypatch):
    bulletin, figures = _drawn(monkeypatch)
    bulletin._bars(
        ["Paser", "Berau", "Bontang"], {"a": [90, 95, 99], "b": [50, 2, 3], "c": [1, 2, 3]}, "%"
    )
    [figure] = figures
    axes = figure.axes[0]
    legend = axes.get_legend().get_window_extent()
    assert legend.x0 >= axes.get_window_extent().x1  # right of the plotting area


def test_bps_years_and_register_months_share_one_time_axis(monkeypatch):
    bulletin, figures = _drawn(monkeypatch)
    bulletin._trend_chart(
        {
            "BPS resmi": [("2023", 6.1), ("2024", 5.78)],
            "Register": [("2025-02", 5.6), ("2025-03", 5.5)],
        },
        "P0 (%)",
    )
    [figure] = figures
    bps, register = figure.axes[0].get_lines()
    assert register.get_xdata()[1] - register.get_xdata()[0] == pytest.approx(1 / 12)
    assert register.get_xdata()[1] - bps.get_xdata()[1] == pytest.approx(1.0)  # March to March


def test_one_period_is_no_trend(monkeypatch):
    bulletin, figures = _drawn(monkeypatch)
    assert (
        bulletin._trend_chart({"Paser": [("2025-03", 6.7)], "Berau": [("2025-03", 4.9)]}, "%")
        is None
    )
    assert figures == []
