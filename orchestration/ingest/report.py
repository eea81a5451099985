"""Validation reports for district operators, in Indonesian and English (JSON + HTML)."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import shutil
from pathlib import Path

import duckdb

from .contract import QUARANTINE_CAUSES, REASONS, WITA
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
# is all stars; a short keyed tag (``#3fa9``, from the value's pseudonym) tells two masked
# values apart without revealing either. Written by DuckDB itself (a quarantined kabupaten has
# hundreds of thousands of rejected cells).
REJECTS_SQL = """
    select r.table_name as "table", r.line, r.column_name as "column",
           case when r.value is null or not r.personal then r.value
                when length(r.value) <= 6 or not regexp_full_match(r.value, '[0-9][0-9.,eE+-]*')
                    then repeat('*', length(r.value)) || ' #' || r.tag
                else left(r.value, 4) || repeat('*', length(r.value) - 6) || right(r.value, 2)
                    || ' #' || r.tag
           end as value,
           r.reason_code, r.cause_line as caused_by_keluarga_line,
           m.message_id, m.message_en, m.fix_id, m.fix_en
    from rejects r join reason_messages m using (reason_code)
    order by case r.table_name when 'keluarga' then 1 when 'anggota' then 2 else 3 end,
             r.reason_code = 'ORPHAN', r.line, r.column_name
"""


# Rejected cells grouped by table, column and reason, with their lines as ranges ("4–10, 12"),
# the first masked values, and for ORPHANs the keluarga lines behind them; in the order above.
GROUPS_SQL = f"""
    with listed as (select * from ({REJECTS_SQL})),
    islands as (
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
                   filter (where caused_by_keluarga_line is not null) as caused_by_keluarga_lines,
               any_value(message_id) as message_id, any_value(message_en) as message_en
        from listed group by all
    )
    select d.*, l.ranges from details d join lines l using ("table", "column", reason_code)
    order by case d."table" when 'keluarga' then 1 when 'anggota' then 2 else 3 end,
             d.reason_code = 'ORPHAN', l.first_line, d."column"
"""


def tag_rejects(con: duckdb.DuckDBPyConnection, tag_sql: str, params: dict) -> None:
    """Give each personal value of the temp table ``rejects`` its tag: the first 4 hexadecimal
    characters of its pseudonym (``tag_sql``, an expression of ``value`` with ``params``)."""
    con.execute("alter table rejects add column if not exists tag varchar")
    con.execute(f"update rejects set tag = left({tag_sql}, 4) where personal", params)


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
    """From the temp table ``rejects``: the count per reason, the groups, and the first rows."""
    by_reason = dict(
        con.execute(
            "select reason_code, count(*) from rejects group by all order by reason_code"
        ).fetchall()
    )
    return by_reason, _dicts(con, GROUPS_SQL), _dicts(con, f"{REJECTS_SQL} limit {LISTED_ROWS}")


def _dicts(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def report_path(reports: Path, sub: Submission) -> Path:
    """``reports/<unit>/<period>/<label>.json``: where the submission's report is written."""
    return reports / (sub.unit_code or "unknown") / (sub.period or "unknown") / f"{sub.label}.json"


def write_submission_report(
    con: duckdb.DuckDBPyConnection,
    sub: Submission,
    reports: Path,
    unit_name: str | None,
    tags: tuple[str, dict] | None = None,
) -> Path:
    """The operator's report of a decided submission (JSON + HTML); returns the JSON's path.
    ``tags``: the SQL and parameters of the pseudonym that tags masked values."""
    if sub.counts and tags:
        tag_rejects(con, *tags)
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
    ``<stem>.rejects.csv``: every one of them (the temp table ``rejects`` on ``con``), written by
    DuckDB. The JSON and the page stay small: groups, and the first cells one by one."""
    folder.mkdir(parents=True, exist_ok=True)
    total = sum(report["rejects_by_reason"].values())
    report = {**report, "rejects_total": total, "rejects": list(first_rejects)[:LISTED_ROWS]}
    if con is not None:
        listing = folder / f"{stem}.rejects.csv"
        target = str(listing).replace("'", "''")
        con.execute(f"copy ({REJECTS_SQL}) to '{target}' (header, delimiter ',')")
        report["rejects_file"] = listing.name
    json_path = folder / f"{stem}.json"
    json_path.write_text(json.dumps(report, ensure_ascii=False, default=str), encoding="utf-8")
    (folder / f"{stem}.html").write_text(
        render_html(report, report["rejects"][:LISTED_ROWS], total), encoding="utf-8"
    )
    return json_path


def copy_report(json_path: Path, folder: Path, stem: str) -> Path:
    """The same report under another name (beside a quarantined submission's files): a second
    link to the same file where the file system allows (a report is never changed once
    written, and a quarantined kabupaten's list of rejects is hundreds of MB), else a copy."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".html", ".rejects.csv"):
        source = json_path.with_name(json_path.stem + suffix)
        target = folder / f"{stem}{suffix}"
        if not source.exists():
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return folder / f"{stem}.json"


def _wita(value: object) -> str | None:
    """An ISO time as the operators' clock shows it: ``2025-04-03 09:12 WITA``."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)  # as sent, when it is not a time
    if moment.tzinfo is None:
        return str(value)
    return f"{moment.astimezone(WITA):%Y-%m-%d %H:%M} WITA"


def _caused_by(row: dict) -> str:
    line = row.get("caused_by_keluarga_line")
    if row["reason_code"] != "ORPHAN":
        return ""
    if line is None:
        return (
            "<br>No. KK ini tidak ada di keluarga. <small>This No. KK is not in keluarga.</small>"
        )
    return f"<br>Penyebab: keluarga baris {line}. <small>Caused by keluarga line {line}.</small>"


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def render_html(report: dict, rejects: list[dict], total: int) -> str:
    title = f"Laporan validasi / Validation report — {report.get('unit_code') or '?'} {report.get('period') or '?'}"
    parts = [
        "<!doctype html><html lang='id'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        ".accepted{color:#176b1a}.quarantined{color:#b00020}.superseded{color:#8a6d00}"
        ".pending{color:#8a4b00}"
        "small{color:#555}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<h2 class='{_e(report['status'])}'>{_e(report['status_id'])}<br>"
        f"<small>{_e(report['status_en'])}</small></h2>",
        "<table>",
    ]
    shown = {
        "unit_code": report.get("unit_code"),
        "period": report.get("period"),
        "submitted_at": _wita(report.get("submitted_at")),
        "received_at": _wita(report.get("received_at")),
        "petugas": report.get("petugas"),
        "submission_id": (report.get("submission_id") or "")[:12],
        "landing_name": report.get("landing_name"),
    }
    for label, key in [
        ("Kode wilayah / Unit", "unit_code"),
        ("Periode / Period", "period"),
        ("Dikirim pada / Sent at", "submitted_at"),
        ("Diterima sistem / Received at", "received_at"),
        ("Petugas / Officer", "petugas"),
        ("ID kiriman / Submission id", "submission_id"),
        ("Nama di landing / Landing name", "landing_name"),
    ]:
        parts.append(f"<tr><th>{label}</th><td>{_e(shown[key])}</td></tr>")
    parts.append("</table>")
    if report.get("reason_code"):
        parts += [
            "<h3>Alasan karantina / Quarantine reason</h3>",
            f"<p><b>{_e(report['reason_code'])}</b>: {_e(report['reason_id'])}<br>"
            f"<small>{_e(report['reason_en'])}</small></p>",
            f"<p><code>{_e(report.get('detail'))}</code></p>",
            "<p>Perbaiki penyebab di atas lalu kirim ulang seluruh kiriman dengan dikirim_pada yang "
            "baru.<br><small>Fix the cause above and send the whole submission again with a new "
            "dikirim_pada.</small></p>",
        ]
    if report.get("held_by"):
        held = report["held_by"]
        parts.append(
            f"<p class='pending'>Periode {_e(report['period'])} untuk wilayah "
            f"<b>{_e(held['region_code'])}</b> sudah disetujui oleh {_e(held['approved_by'])} "
            f"({_e(_wita(held['approved_at']))}) dan dikunci. Kiriman ini sudah divalidasi dan diarsipkan, "
            "tetapi tidak mengubah angka yang dipublikasikan sampai walidata membuka kunci dengan "
            "alasan (<code>satudata unlock</code>). Apa yang akan berubah, angka demi angka: "
            f"<code>reports/{_e(held['review_report'])}</code> setelah proses berikutnya.<br><small>"
            f"The period is approved for <b>{_e(held['region_code'])}</b> and locked. This "
            "submission is validated and archived but changes no published figure until the "
            "walidata unlocks the period with a reason. What it would change, figure by figure: "
            f"<code>reports/{_e(held['review_report'])}</code> after the next run.</small></p>"
        )
    if report.get("superseded_by"):
        parts.append(
            f"<p>Digantikan oleh / superseded by <code>{_e(report['superseded_by'])}</code></p>"
        )
    tables = report.get("tables") or {}
    if tables:
        parts.append(
            "<h3>Jumlah baris / Row counts</h3><table><tr><th>tabel / table</th><th>berkas / file"
            "</th><th>diterima / received</th><th>lolos / accepted</th><th>ditolak / rejected</th>"
            "<th>kolom diabaikan / ignored columns</th></tr>"
        )
        for name, info in tables.items():
            parts.append(
                f"<tr><td>{_e(name)}</td><td>{_e(info.get('file'))} <small>{_e(info.get('encoding') or '')}"
                f" {_e(info.get('delimiter') or '')}</small></td><td>{_e(info.get('rows'))}</td>"
                f"<td>{_e(info.get('accepted'))}</td><td>{_e(info.get('rejected'))}</td>"
                f"<td>{_e(', '.join(info.get('ignored_columns') or []))}</td></tr>"
            )
        parts.append("</table>")
    if total:
        parts.append("<h3>Ringkasan penolakan / Rejections by reason</h3><table>")
        for code, count in report["rejects_by_reason"].items():
            msg_id, msg_en, fix_id, fix_en = REASONS[code]
            parts.append(
                f"<tr><td><b>{_e(code)}</b></td><td>{count}</td><td>{_e(msg_id)}<br><small>"
                f"{_e(msg_en)}</small></td><td>Perbaikan: {_e(fix_id)}<br><small>Fix: {_e(fix_en)}"
                "</small></td></tr>"
            )
        parts.append("</table>")
        parts.append(
            "<h3>Penolakan per kolom / Rejections by column</h3><p><small>Baris 1 = header. "
            "Data pribadi disamarkan; tanda #xxxx membedakan nilai yang berbeda. / Line 1 is the "
            "header. Personal data is masked; the #xxxx tag tells different values apart."
            "</small></p><table><tr><th>tabel</th><th>kolom / column</th><th>alasan / reason"
            "</th><th>jumlah / rows</th><th>baris / lines</th><th>contoh / examples</th></tr>"
        )
        for group in report.get("reject_groups") or []:
            ranges = list(group["ranges"])
            lines = ", ".join(ranges[:RANGE_LIMIT])
            if len(ranges) > RANGE_LIMIT:
                lines += f" … (+{len(ranges) - RANGE_LIMIT})"
            caused = group.get("caused_by_keluarga_lines") or []
            cause = ""
            if caused:
                shown = ", ".join(str(n) for n in caused[:RANGE_LIMIT])
                cause = (
                    f"<br>Penyebab: keluarga baris {_e(shown)}. <small>Caused by keluarga "
                    f"line(s) {_e(shown)}.</small>"
                )
            examples = ", ".join("" if v is None else str(v) for v in group["examples"])
            parts.append(
                f"<tr><td>{_e(group['table'])}</td><td>{_e(group['column'])}</td>"
                f"<td><b>{_e(group['reason_code'])}</b> {_e(group['message_id'])}<br><small>"
                f"{_e(group['message_en'])}</small>{cause}</td><td>{group['rows']}</td>"
                f"<td>{_e(lines)}</td><td><code>{_e(examples)}</code></td></tr>"
            )
        parts.append("</table>")
        parts.append(
            "<h3>Baris ditolak / Rejected rows</h3><table>"
            "<tr><th>tabel</th><th>baris / line</th><th>kolom / column</th><th>nilai / value</th>"
            "<th>alasan / reason</th></tr>"
        )
        for row in rejects[:LISTED_ROWS]:
            parts.append(
                f"<tr><td>{_e(row['table'])}</td><td>{row['line']}</td><td>{_e(row['column'])}</td>"
                f"<td><code>{_e(row['value'])}</code></td><td><b>{_e(row['reason_code'])}</b> "
                f"{_e(row['message_id'])}<br><small>{_e(row['message_en'])}</small>"
                f"{_caused_by(row)}</td></tr>"
            )
        parts.append("</table>")
        if total > len(rejects):
            listing = report.get("rejects_file") or "CSV"
            parts.append(
                f"<p>{total - len(rejects)} sel lagi ada di <code>{_e(listing)}</code> (daftar "
                f"lengkap). / {total - len(rejects)} more cells are in <code>{_e(listing)}</code> "
                "(the complete list).</p>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
