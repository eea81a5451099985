"""The forum's bulletin: one static bilingual HTML page per publication.

``warehouse/publications/<id>/bulletin.html``, and ``warehouse/bulletin.html`` (a symbolic link
swapped with each publication, and by a rollback) for the current one. Everything comes from the
published file: the figures per regency with their approval status, trends across periods and
BPS's official series, register against BPS, completeness, targets, program coverage with
targeting errors, data-quality issues. Charts are drawn here with matplotlib and embedded as
SVG: the page reads nothing else (no CDN, no font, no script) and opens offline.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from orchestration.ingest.store import rows
from orchestration.pages import number, write
from orchestration.publication.coverage import expected_units, sentence
from orchestration.publication.publish import current_id, point_bulletin
from orchestration.settings import Settings

TARGET_NAMES = {
    "poverty_rate": ("P0 (persentase penduduk miskin)", "P0 (poverty rate)"),
    "extreme_poverty_rate": ("Kemiskinan ekstrem", "Extreme poverty rate"),
    "uep_recipient_households": (
        "Penerima hibah UEP (keluarga)",
        "UEP grant recipients (households)",
    ),
}
TARGET_STATUS = {
    "met": ("tercapai", "met"),
    "on_track": ("sesuai jalur", "on track"),
    "off_track": ("di luar jalur", "off track"),
    "missed": ("tidak tercapai", "missed"),
    "not_met": ("belum tercapai", "not met yet"),
}
ISSUES = {
    "household_size_mismatch": ("jumlah_anggota ≠ baris anggota", "household size ≠ member rows"),
    "nik_sex_mismatch": ("jenis kelamin tidak sesuai NIK", "sex does not match the NIK"),
    "person_in_several_units": ("NIK di beberapa unit", "person in several units"),
    "sudden_change_households": ("perubahan mendadak: keluarga", "sudden change: households"),
    "sudden_change_population": ("perubahan mendadak: penduduk", "sudden change: population"),
    "sudden_change_poverty_rate": ("perubahan mendadak: P0", "sudden change: P0"),
    "sudden_change_recipient_households": (
        "perubahan mendadak: penerima bantuan",
        "sudden change: recipients",
    ),
}
COLOURS = [
    "#0f4c81",
    "#d1495b",
    "#edae49",
    "#00798c",
    "#66a182",
    "#8d6a9f",
    "#2e4057",
    "#c2703d",
    "#6c8ead",
    "#9b9b3a",
    "#5b5b5b",
]


@dataclass
class Bulletin:
    path: Path
    publication_id: str
    latest_period: str


# -- charts ------------------------------------------------------------------------------------
def _svg(figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no DOCTYPE)."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _axes(width: float = 8.0, height: float = 3.4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    matplotlib.rcParams.update(
        {
            "svg.fonttype": "path",
            "svg.hashsalt": "satudata",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    figure, axes = plt.subplots(figsize=(width, height))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: number(v, 1)))
    axes.grid(axis="y", color="#e3e6ea")
    axes.set_axisbelow(True)
    return figure, axes


def _when(label: str) -> float:
    """``2019`` (BPS's March figure) or ``2025-03`` as a point in time, in years."""
    year, _, month = label.partition("-")
    return int(year) + ((int(month) if month else 3) - 0.5) / 12


def _trend_chart(series: dict[str, list[tuple[str, float]]], ylabel: str, band=None) -> str | None:
    """Lines across time, one per name (periods ``YYYY-MM`` and BPS's years on one time axis,
    a month a month's width); an optional target band. None with a single period: one point
    is no trend, and the page says the figures in words instead."""
    periods = sorted({p for points in series.values() for p, _ in points})
    if len(periods) < 2:
        return None
    figure, axes = _axes()
    if band is not None:
        axes.axhspan(band[0], band[1], color="#dff3e3", zorder=0, label=band[2])
    for k, (name, points) in enumerate(series.items()):
        points = sorted(points, key=lambda point: _when(point[0]))
        axes.plot(
            [_when(p) for p, _ in points],
            [v for _, v in points],
            marker="o",
            linewidth=1.6,
            color=COLOURS[k % len(COLOURS)],
            linestyle="--" if name.startswith("BPS") else "-",
            label=name,
        )
    first, last = _when(periods[0]), _when(periods[-1])
    if last - first > 2:  # years apart: a tick a year
        years = range(int(first), int(last) + 1)
        axes.set_xticks([y + 0.5 / 12 for y in years], [str(y) for y in years])
    else:
        axes.set_xticks(
            [_when(p) for p in periods], periods, rotation=45 if len(periods) > 6 else 0
        )
    axes.set_ylabel(ylabel)
    axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def _bars(labels: list[str], groups: dict[str, list[float | None]], ylabel: str) -> str:
    """Grouped vertical bars: one group per label, one bar per series."""
    figure, axes = _axes(7.0, 3.4)
    width = 0.8 / max(1, len(groups))
    for k, (name, values) in enumerate(groups.items()):
        xs = [i + (k - (len(groups) - 1) / 2) * width for i in range(len(labels))]
        axes.bar(
            xs,
            [0 if v is None else v for v in values],
            width=width,
            color=COLOURS[k % len(COLOURS)],
            label=name,
        )
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set_ylabel(ylabel)
    # beside the plot, never over a bar
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def _short(name: str) -> str:
    return re.sub(
        r"^(Kabupaten|Kota) ", lambda m: "Kab. " if m[1] == "Kabupaten" else "Kota ", name
    )


# -- the page ----------------------------------------------------------------------------------
def build_bulletin(settings: Settings) -> Bulletin:
    """The bulletin of the current publication; the stable link then points at it."""
    publication_id = current_id(settings)
    if publication_id is None:
        raise RuntimeError("nothing is published yet")
    folder = settings.warehouse / "publications" / publication_id
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        context = _context(con)
    path = write(folder / "bulletin.html", "bulletin.html.j2", **context)
    point_bulletin(settings, folder)
    return Bulletin(path, publication_id, context["latest"])


def _context(con: duckdb.DuckDBPyConnection) -> dict:
    log = rows(con, "select * from publication_log order by published_at desc limit 1")[0]
    periods = log["periods"].split(",")
    latest = periods[-1]
    names = dict(con.execute("select region_code, region_name from dim_region").fetchall())
    short = {code: _short(name) for code, name in names.items()}
    poverty = rows(
        con,
        "select * from fct_poverty where level in ('regency', 'province') "
        "order by period, level desc, region_code",
    )
    current = [r for r in poverty if r["period"] == latest]
    expected = expected_units(con, "64", latest)
    missing = [u for u in expected if not u["covered"]]
    shown = {r["region_code"] for r in current}
    reconciliation = rows(
        con,
        "select * from fct_reconciliation where period = ? order by level desc, region_code",
        [latest],
    )
    coverage = rows(
        con,
        "select * from fct_program_coverage where period = ? and level in ('regency', 'province') "
        "order by level desc, region_code, program_code = 'ANY' desc, program_code",
        [latest],
    )
    return {
        "log": log,
        "periods": periods,
        "latest": latest,
        "names": names,
        "short": short,
        "province": next((r for r in current if r["level"] == "province"), None),
        "current": current,
        "expected": expected,
        "not_covered": missing,
        "not_covered_words": sentence(missing),
        # a regency with no figures at all still has its row, saying why
        "without_figures": [u for u in missing if u["unit_code"][:5] not in shown],
        "approved": sum(1 for r in current if r["approval_status"] == "approved"),
        "approval": {r["region_code"]: r["approval_status"] for r in current},
        **_trend_charts(con, poverty, short),
        "reconciliation": reconciliation,
        "reconciliation_chart": _bars(
            [short[r["region_code"]] for r in reconciliation],
            {
                "Register": [r["register_poverty_rate"] for r in reconciliation],
                "BPS": [r["bps_poverty_rate"] for r in reconciliation],
            },
            "P0 (%)",
        ),
        "coverage": coverage,
        "coverage_chart": _coverage_chart(
            [c for c in coverage if c["program_code"] == "ANY"], short
        ),
        "grid": _completeness_grid(con),
        "targets": rows(
            con,
            "select * from fct_target_progress where period = ? "
            "order by target_id, level desc, region_code",
            [latest],
        ),
        "target_names": TARGET_NAMES,
        "target_status": TARGET_STATUS,
        "quality": rows(
            con,
            "select region_code, level, issue, affected_rows, change, threshold "
            "from fct_data_quality where period = ? and level in ('regency', 'province') "
            "and affected_rows > 0 order by level desc, region_code, issue",
            [latest],
        ),
        "issues": ISSUES,
    }


def _trend_charts(con: duckdb.DuckDBPyConnection, poverty: list[dict], short: dict) -> dict:
    """The register's P0 and extreme poverty per region across periods, and BPS's official
    series with the RPJP target band."""
    series: dict[str, list[tuple[str, float]]] = {}
    extreme: dict[str, list[tuple[str, float]]] = {}
    for row in poverty:
        name = short[row["region_code"]]
        series.setdefault(name, []).append((row["period"], row["poverty_rate"]))
        extreme.setdefault(name, []).append((row["period"], row["extreme_poverty_rate"]))
    bps = rows(
        con,
        "select stats_year, max_by(poverty_rate, stats_period = 'Maret') as poverty_rate "
        "from ref_bps_poverty where region_code = '64' and poverty_rate is not null "
        "group by stats_year order by stats_year",
    )
    target = rows(
        con,
        "select distinct target_low, target_high from fct_target_progress "
        "where target_id = 'rpjp_poverty_rate_range'",
    )
    band = (target[0]["target_low"], target[0]["target_high"], "RPJP 3,5–5 %") if target else None
    official = {
        "BPS resmi / official, Kalimantan Timur": [
            (str(r["stats_year"]), r["poverty_rate"]) for r in bps
        ],
        "Register, Kalimantan Timur": [
            (p["period"], p["poverty_rate"]) for p in poverty if p["level"] == "province"
        ],
    }
    sources = rows(
        con,
        "select source, string_agg(distinct stats_year::varchar, ', ' order by stats_year::varchar)"
        " as years from ref_bps_poverty where region_code = '64' and starts_with(source, 'http') "
        "group by source order by min(stats_year)",
    )
    return {
        "bps_sources": [{**s, "name": f"{_site(s['source'])} ({s['years']})"} for s in sources],
        "trend_chart": _trend_chart(series, "P0 (%)"),
        "extreme_chart": _trend_chart(extreme, "%"),
        "bps_chart": _trend_chart(official, "P0 (%)", band),
    }


def _site(url: str) -> str:
    """``https://kaltim.antaranews.com/…`` → ``kaltim.antaranews.com``: a link's name."""
    return urlparse(url).netloc.removeprefix("www.")


def _coverage_chart(coverage_any: list[dict], short: dict) -> str:
    return _bars(
        [short[r["region_code"]] for r in coverage_any],
        {
            "Cakupan / coverage": [r["coverage_rate"] for r in coverage_any],
            "Inklusi / inclusion error": [r["inclusion_error_rate"] for r in coverage_any],
            "Eksklusi / exclusion error": [r["exclusion_error_rate"] for r in coverage_any],
        },
        "%",
    )


def _completeness_grid(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """unit -> period -> the best status of the unit's submissions for the period."""
    grid: dict[str, dict[str, str]] = {}
    order = {"accepted": 0, "pending": 1, "quarantined": 2, "missing": 3}
    for row in rows(
        con,
        "select unit_code, period, status from fct_submission_status "
        "where status in ('accepted', 'missing', 'quarantined', 'pending') order by unit_code, period",
    ):
        cell = grid.setdefault(row["unit_code"], {})
        if row["period"] not in cell or order[row["status"]] < order[cell[row["period"]]]:
            cell[row["period"]] = row["status"]
    return grid
