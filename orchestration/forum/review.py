"""Review pages for the Forum Satu Data, written with every publication.

``reports/review/<period>/<region>.html`` for every submitting unit and every regency and the
province with figures in the period (and an ``index.html``): the figures as published, their
approval status, each unit's submission and confirmation, the sudden changes from the previous
period (flagged in ``fct_data_quality``), and what pending revisions would change, figure by
figure (``fct_pending_revisions``). The unit's operator reads its page before ``satudata
confirm``; the walidata reads the region's before ``satudata approve``. Everything comes from
the published file, so a page shows exactly what was published.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from orchestration.ingest.contract import covers_sql
from orchestration.ingest.store import rows
from orchestration.pages import write
from orchestration.publication.coverage import expected_units
from orchestration.settings import Settings

MEASURES = {  # fct_poverty column -> (Indonesian, English, decimals, is a rate)
    "households": ("Keluarga", "Households", 0, False),
    "population": ("Penduduk", "Population", 0, False),
    "poor_population": ("Penduduk miskin", "Poor population", 0, False),
    "poverty_rate": ("P0 (persentase penduduk miskin)", "P0 (headcount rate)", 2, True),
    "poverty_gap_index": ("P1 (indeks kedalaman)", "P1 (poverty gap index)", 3, False),
    "poverty_severity_index": ("P2 (indeks keparahan)", "P2 (severity index)", 3, False),
    "extreme_poverty_rate": ("Kemiskinan ekstrem", "Extreme poverty rate", 2, True),
}
SUDDEN = {
    "sudden_change_households": ("Keluarga", "Households", "%"),
    "sudden_change_population": ("Penduduk", "Population", "%"),
    "sudden_change_poverty_rate": ("P0", "P0", "poin / points"),
    "sudden_change_recipient_households": (
        "Keluarga penerima bantuan",
        "Recipient households",
        "%",
    ),
}
LEVELS = {
    "province": "Provinsi / Province",
    "regency": "Kabupaten/Kota / Regency",
    "subdistrict": "Kecamatan / Subdistrict",
}


def write_review_pages(settings: Settings, publication: Path) -> Path:
    """All review pages of a publication, replacing the previous ones. Returns the folder."""
    staging = settings.reports / ".review.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with duckdb.connect(str(publication), read_only=True) as con:
        (publication_id,) = con.execute(
            "select publication_id from publication_log order by published_at desc limit 1"
        ).fetchone()
        regions = rows(
            con,
            """
            select p.*, r.region_name, r.is_submitting_unit,
                   lag(p.period) over w as previous_period
            from fct_poverty p join dim_region r using (region_code, level)
            where p.level in ('regency', 'province') or r.is_submitting_unit
            window w as (partition by p.region_code, p.level order by p.period)
            order by p.period, p.region_code
            """,
        )
        index: dict[str, list[dict]] = {}
        figures = {(r["region_code"], r["period"]): r for r in regions}
        for region in regions:
            page = page_context(
                con, region, figures.get((region["region_code"], region["previous_period"]))
            )
            write(
                staging / region["period"] / f"{region['region_code']}.html",
                "review.html.j2",
                **page,
                publication_id=publication_id,
            )
            index.setdefault(region["period"], []).append(
                {**region, "sudden": len(page["sudden"]), "pending": bool(page["pending"])}
            )
        units = {period: expected_units(con, "64", period) for period in index}
    for period, listed in index.items():
        write(
            staging / period / "index.html",
            "review_index.html.j2",
            period=period,
            regions=listed,
            units=units[period],
            levels=LEVELS,
            publication_id=publication_id,
        )
    return _replace(staging, settings.reports / "review")


def page_context(con: duckdb.DuckDBPyConnection, region: dict, previous: dict | None) -> dict:
    """What the review page of one region and period shows: its figures beside the previous
    period's, the confirmations of the units below it, sudden changes and pending revisions."""
    code, period = region["region_code"], region["period"]
    units = rows(
        con,
        "select * from fct_submission_status where period = $period "
        f"and {covers_sql('$region', 'unit_code')} order by unit_code, status",
        {"period": period, "region": code},
    )
    expected = expected_units(con, code, period)
    sudden = rows(
        con,
        f"""
        select q.*, r.region_name from fct_data_quality q join dim_region r
            using (region_code, level)
        where q.period = $period and q.issue like 'sudden_change_%' and q.affected_rows > 0
            and {covers_sql("$region", "q.region_code")}
        order by q.region_code, q.issue
        """,
        {"period": period, "region": code},
    )
    pending = rows(
        con,
        "select * from fct_pending_revisions where region_code = ? and level = ? and period = ?",
        [code, region["level"], period],
    )
    return {
        "region": region,
        "level": LEVELS[region["level"]],
        "previous": previous,
        "measures": MEASURES,
        "units": units,
        "confirmed": sum(1 for u in units if u["status"] == "accepted" and u["confirmed_by"]),
        "expected": len(expected),
        "not_covered": [u for u in expected if not u["covered"]],
        "sudden": [{**s, "words": SUDDEN[s["issue"]]} for s in sudden],
        "pending": sorted(pending, key=lambda row: list(MEASURES).index(row["measure"])),
    }


def _replace(staging: Path, folder: Path) -> Path:
    """Put the staged pages in place of the previous ones."""
    old = folder.with_name(".review.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder
