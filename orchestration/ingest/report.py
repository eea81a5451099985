"""Validation reports for district operators, in Indonesian and English (JSON + HTML)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb

from orchestration.ingest.store import rows
from orchestration.pages import write

from .contract import QUARANTINE_CAUSES, REASONS
from .submission import Submission

STATUS_WORDS = {
    "accepted": ("DITERIMA", "ACCEPTED"),
    "superseded": (
        "DIGANTIKAN (ada kiriman yang lebih baru)",
        "SUPERSEDED (a newer submission exists)",
    ),
    "pending": (
        "DITUNDA (periode ini sudah disetujui dan dikunci)",
        "PENDING (this period is approved and locked)",
    ),
    "quarantined": (
        "DIKARANTINA (seluruh kiriman ditahan)",
        "QUARANTINED (the whole submission is held)",
    ),
}
# rejected cells listed one by one in the report (page and JSON); all of them are in the CSV
LISTED_ROWS = 200
RANGE_LIMIT = 20  # line ranges shown per group


# Every rejected cell as the operator reads it: root causes first (keluarga, then anggota and
# bantuan, each ORPHAN after the other faults and naming the keluarga line that caused it), in
# the order of the file. Personal values are masked (the operator finds the row by its line): a
# number of more than 6 characters keeps its first 4 and last 2, anything else (a name, say)
# is all stars; a short keyed tag (``#3fa9``, the first characters of the value's pseudonym,
# ``load.pseudonymise_rejects``) tells two masked values apart without revealing either.
# Made once per report as the temp table ``listed`` (a quarantined kabupaten has hundreds of
# thousands of rejected cells), which the groups, the first cells and the CSV read.
LISTED_SQL = """
    create or replace temp table listed as
    select row_number() over (
               order by case r.table_name when 'keluarga' then 1 when 'anggota' then 2 else 3 end,
                        r.reason_code = 'ORPHAN', r.line, r.column_name) as position,
           r.table_name as "table", r.line, r.column_name as "column",
           case when r.value is null or not r.personal then r.value
                when length(r.value) <= 6 or not regexp_full_match(r.value, '[0-9][0-9.,eE+-]*')
                    then repeat('*', length(r.value)) || ' #' || left(r.pseudonym, 4)
                else left(r.value, 4) || repeat('*', length(r.value) - 6) || right(r.value, 2)
                    || ' #' || left(r.pseudonym, 4)
           end as value,
           r.reason_code, r.cause_line as caused_by_keluarga_line
    from rejects r
"""
# The listing with each reason's words, in its order (the CSV has every cell, the page the first).
LISTING_SQL = """
    select l."table", l.line, l."column", l.value, l.reason_code, l.caused_by_keluarga_line,
           m.message_id, m.message_en, m.fix_id, m.fix_en
    from listed l join reason_messages m using (reason_code)
    order by l.position
"""


# Rejected cells grouped by table, column and reason, with their lines as ranges ("4–10, 12"),
# the first masked values, and for ORPHANs the keluarga lines behind them; in the order above.
GROUPS_SQL = """
    with islands as (
        select "table", "column", reason_code, line,
               line - row_number() over (partition by "table", "column", reason_code
                                         order by line) as island
        from listed
    ),
    ranges as (
        select "table", "column", reason_code, island, min(line) as first_line,
               max(line) as last_line
        from islands group by all
    ),
    lines as (
        select "table", "column", reason_code, min(first_line) as first_line,
               list(case when first_line = last_line then first_line::varchar
                         else first_line || '–' || last_line end order by first_line) as ranges
        from ranges group by all
    ),
    details as (
        select "table", "column", reason_code, count(*) as rows,
               list(value order by line)[1:3] as examples,
               list(distinct caused_by_keluarga_line order by caused_by_keluarga_line)
                   filter (where caused_by_keluarga_line is not null) as caused_by_keluarga_lines
        from listed group by all
    )
    select d."table", d."column", d.reason_code, d.rows, d.examples, d.caused_by_keluarga_lines,
           m.message_id, m.message_en, l.ranges
    from details d
    join lines l using ("table", "column", reason_code)
    join reason_messages m using (reason_code)
    order by case d."table" when 'keluarga' then 1 when 'anggota' then 2 else 3 end,
             d.reason_code = 'ORPHAN', l.first_line, d."column"
"""


def install_reasons(con: duckdb.DuckDBPyConnection) -> None:
    """The contract's bilingual messages as the temp table ``reason_messages``."""
    con.execute(
        "create or replace temp table reason_messages (reason_code varchar primary key, "
        "message_id varchar, message_en varchar, fix_id varchar, fix_en varchar)"
    )
    con.executemany(
        "insert into reason_messages values (?, ?, ?, ?, ?)",
        [[code, *words] for code, words in REASONS.items()],
    )


def reject_summary(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], list[dict], list[dict]]:
    """From the temp table ``rejects``: the count per reason, the groups, and the first rows
    (and the temp table ``listed``, which ``write_report`` writes to the CSV)."""
    con.execute(LISTED_SQL)
    by_reason = dict(
        con.execute(
            "select reason_code, count(*) from rejects group by all order by reason_code"
        ).fetchall()
    )
    return by_reason, rows(con, GROUPS_SQL), rows(con, f"{LISTING_SQL} limit {LISTED_ROWS}")


def report_path(reports: Path, sub: Submission) -> Path:
    """``reports/<unit>/<period>/<label>.json``: where the submission's report is written."""
    return reports / (sub.unit_code or "unknown") / (sub.period or "unknown") / f"{sub.label}.json"


def write_submission_report(
    con: duckdb.DuckDBPyConnection,
    sub: Submission,
    reports: Path,
    unit_name: str | None,
) -> Path:
    """The operator's report of a decided submission (JSON + HTML); returns the JSON's path."""
    by_reason, groups, first_rejects = reject_summary(con) if sub.counts else ({}, [], [])
    manifest = sub.manifest
    report = build_report(
        submission_id=sub.submission_id,
        landing_name=sub.landing_name,
        received_at=sub.received.received_at.isoformat(),
        unit_code=sub.unit_code,
        unit_name=unit_name,
        period=sub.period,
        submitted_at=manifest.submitted_at.isoformat()
        if manifest
        else sub.manifest_raw.get("dikirim_pada"),
        petugas=sub.manifest_raw.get("petugas"),
        status=sub.status,
        reason_code=sub.quarantine.cause if sub.quarantine else None,
        detail=sub.quarantine.detail if sub.quarantine else None,
        superseded_by=sub.replaced_by,
        held_by={
            "region_code": sub.held_by[0],
            "approved_by": sub.held_by[1],
            "approved_at": sub.held_by[2].isoformat(),
            "review_report": f"review/{sub.period}/{sub.unit_code}.html",
        }
        if sub.held_by
        else None,
        files=[{k: f[k] for k in ("path", "sha256", "size")} for f in sub.received.files],
        tables=sub.counts,
        rejects_by_reason=by_reason,
        reject_groups=groups,
    )
    path = report_path(reports, sub)
    return write_report(report, path.parent, sub.label, con if sub.counts else None, first_rejects)


def build_report(**fields) -> dict:
    """The report without its list of rejected cells (``write_report`` adds it)."""
    report = dict(fields)
    status = report["status"]
    report["status_id"], report["status_en"] = STATUS_WORDS[status]
    cause = report.get("reason_code")
    if cause:
        report["reason_id"], report["reason_en"] = QUARANTINE_CAUSES[cause]
    report.setdefault("rejects_by_reason", {})
    return report


def write_report(
    report: dict,
    folder: Path,
    stem: str,
    con: duckdb.DuckDBPyConnection | None = None,
    first_rejects: list[dict] = (),
) -> Path:
    """``<stem>.json`` and ``<stem>.html`` in ``folder``, and with rejected cells
    ``<stem>.rejects.csv``: every one of them (the temp table ``listed`` on ``con``), written by
    DuckDB. The JSON and the page stay small: groups, and the first cells one by one."""
    folder.mkdir(parents=True, exist_ok=True)
    total = sum(report["rejects_by_reason"].values())
    report = {**report, "rejects_total": total, "rejects": list(first_rejects)[:LISTED_ROWS]}
    if con is not None:
        listing = folder / f"{stem}.rejects.csv"
        target = str(listing).replace("'", "''")
        con.execute(f"copy ({LISTING_SQL}) to '{target}' (header, delimiter ',')")
        report["rejects_file"] = listing.name
    return _write_json_and_page(report, folder, stem)


def _write_json_and_page(report: dict, folder: Path, stem: str) -> Path:
    json_path = folder / f"{stem}.json"
    json_path.write_text(json.dumps(report, ensure_ascii=False, default=str), encoding="utf-8")
    write(
        folder / f"{stem}.html",
        "report.html.j2",
        report=report,
        total=report["rejects_total"],
        rejects=report["rejects"][:LISTED_ROWS],
        reasons=REASONS,
        range_limit=RANGE_LIMIT,
    )
    return json_path


def copy_report(json_path: Path, folder: Path, stem: str) -> Path:
    """The same report under another name (beside a quarantined submission's files), naming the
    rejects CSV that lies beside it. The CSV is a second link to the same file where the file
    system allows (a quarantined kabupaten's list of rejects is hundreds of MB), else a copy."""
    folder.mkdir(parents=True, exist_ok=True)
    report = json.loads(json_path.read_text(encoding="utf-8"))
    listing = json_path.with_name(json_path.stem + ".rejects.csv")
    if listing.exists():
        target = folder / f"{stem}.rejects.csv"
        target.unlink(missing_ok=True)
        try:
            os.link(listing, target)
        except OSError:
            shutil.copyfile(listing, target)
        report["rejects_file"] = target.name
    return _write_json_and_page(report, folder, stem)
