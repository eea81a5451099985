"""The Forum Satu Data's sign-off: confirmations, approvals, withdrawals and unlocks.

Two levels, as Satu Data Indonesia (and DHIS2's data approval) has them:

- a submitting unit's operator (produsen data) **confirms** the submission that counts for a
  period, after reading its published figures ("validasi selesai"); ``withdraw`` takes a
  confirmation back, with a reason;
- the walidata **approves** a region's figures for a period (a regency, or the province), only
  when every submitting unit below it has confirmed the submission that is published. The
  approval **locks** the period for those units: a later revision is still received, validated
  and archived, but held as ``pending`` (``ingest.load.decide``) and changes no figure until
  the walidata **unlocks** the region and period with a reason; the newest pending revision of
  each unit then counts (``ingest.load.release_pending``) and the region is provisional again.

Every decision is a row of ``raw.signoffs`` in the build file, never updated nor deleted: who,
when, which publication, which submissions, and a SHA-256 of the published figures confirmed or
approved. Each row's id hashes its fields and the previous row's id. What is in force is the
view ``raw.signoffs_in_force`` (``ingest/store.py``), which the warehouse reads too.

Every refusal is a ``SignoffError`` with an Indonesian and an English message; it changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from dataclasses import asdict, dataclass

import duckdb

from orchestration.faults import Refused
from orchestration.ingest import load
from orchestration.ingest.contract import PERIOD_RE, covers, covers_sql, normalise_unit_code
from orchestration.ingest.store import (
    build_lock,
    connect_build,
    read_reference_csv,
    rows,
    submitting_units,
)
from orchestration.pages import when
from orchestration.publication.publish import current_id
from orchestration.settings import Settings

ACTIONS = ("confirm", "withdraw", "approve", "unlock")
APPROVABLE_LEVELS = ("kabupaten_kota", "provinsi")  # levels of the regions reference
# the published figures a decision vouches for (their approval columns aside)
FIGURE_TABLES = ("fct_poverty", "fct_employment", "fct_program_coverage")
APPROVAL_COLUMNS = ("approval_status", "approved_at", "approved_by", "approved_region_code")


class SignoffError(Refused):
    """A decision the forum's rules refuse; nothing is recorded."""


@dataclass(frozen=True)
class Decision:
    decision_id: str
    previous_id: str | None
    decided_at: dt.datetime
    action: str
    region_code: str
    period: str
    decided_by: str
    note: str | None
    publication_id: str | None
    submission_ids: list[str]
    figures_digest: str | None


def decide(
    settings: Settings,
    action: str,
    region: str,
    period: str,
    by: str,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> Decision:
    """Check and record one decision; raise ``SignoffError`` (recording nothing) if it cannot
    be taken."""
    if action not in ACTIONS:
        raise SignoffError(
            f"tindakan tidak dikenal {action[:20]!r} (pilih {', '.join(ACTIONS)})",
            f"unknown action {action[:20]!r} (choose {', '.join(ACTIONS)})",
        )
    by, note = checked_name(by), _checked_note(note)
    if action in ("withdraw", "unlock") and not note:
        raise SignoffError(
            f"{action} memerlukan alasan (--reason)", f"{action} needs a reason (--reason)"
        )
    period = (period or "").strip()
    if not PERIOD_RE.match(period):
        raise SignoffError(
            f"periode {period[:20]!r} bukan YYYY-MM", f"period {period[:20]!r} is not YYYY-MM"
        )
    code = normalise_unit_code(region)
    if action in ("confirm", "withdraw"):
        units = submitting_units()
        if code not in units:
            raise SignoffError(
                f"{region[:20]!r} bukan unit pengirim yang terdaftar",
                f"{region[:20]!r} is not a registered submitting unit",
            )
    else:
        levels = {r["kode"]: r["level"] for r in read_reference_csv("kaltim_regions.csv")}
        if levels.get(code or "") not in APPROVABLE_LEVELS:
            raise SignoffError(
                f"{region[:20]!r} bukan kabupaten/kota atau provinsi: hanya wilayah itu disetujui",
                f"{region[:20]!r} is not a regency or the province: only those are approved",
            )
    with build_lock(settings), connect_build(settings) as con:
        return _decide(con, settings, action, code, period, by, note, now)


NAME_MAX, NOTE_MAX = 120, 1000  # characters of who decides, and of a note or reason
# Unicode categories never part of a name or a note: controls (ANSI escapes, NUL), format
# characters, surrogates, private use, unassigned, and line or paragraph separators
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _printable(text: str, newlines: bool = False) -> bool:
    return all(
        (newlines and ch == "\n") or unicodedata.category(ch) not in _UNPRINTABLE for ch in text
    )


def checked_name(by: str | None) -> str:
    """Who decides: one line of printable text, at most ``NAME_MAX`` characters."""
    by = (by or "").strip()
    if not by:
        raise SignoffError(
            "nama yang memutuskan wajib diisi (--by)", "the name of who decides is required (--by)"
        )
    if len(by) > NAME_MAX or not _printable(by):
        raise SignoffError(
            f"nama yang memutuskan harus satu baris teks biasa, paling banyak {NAME_MAX} karakter "
            "(tanpa baris baru atau karakter kontrol)",
            f"the name of who decides must be one line of printable text of at most {NAME_MAX} "
            "characters (no line break or control character)",
        )
    return by


def _checked_note(note: str | None) -> str | None:
    """A note or reason: printable text (line breaks allowed), at most ``NOTE_MAX`` characters."""
    note = (note or "").replace("\r\n", "\n").strip() or None
    if note is not None and (len(note) > NOTE_MAX or not _printable(note, newlines=True)):
        raise SignoffError(
            f"catatan/alasan harus teks biasa, paling banyak {NOTE_MAX} karakter "
            "(tanpa karakter kontrol)",
            f"a note or reason must be printable text of at most {NOTE_MAX} characters "
            "(no control character)",
        )
    return note


def _decide(con, settings, action, code, period, by, note, now) -> Decision:
    problems = verify_log(con)
    if problems:
        raise SignoffError(
            f"log sign-off tidak utuh ({'; '.join(problems[:3])}): tidak ada keputusan baru "
            "sampai log dipulihkan dari cadangan (docs/operations.md)",
            f"the sign-off log is not intact ({'; '.join(problems[:3])}): no new decision until "
            "it is restored from a backup (docs/operations.md)",
        )
    publication = current_id(settings)
    lock = load.lock_of(con, code, period)
    unit_decision = action in ("confirm", "withdraw")
    if unit_decision and lock is not None:
        raise SignoffError(
            f"periode {period} unit {code} dikunci oleh persetujuan {lock[0]} ({lock[1]}): "
            "buka kunci dulu (satudata unlock)",
            f"period {period} of unit {code} is locked by the approval of {lock[0]} ({lock[1]}): "
            "unlock it first (satudata unlock)",
        )
    in_force = _in_force(con, code, period, "confirm" if unit_decision else "approve")
    submissions, digest = [], None
    if action == "confirm":
        submissions, digest = _confirmable(con, settings, code, period, in_force)
    elif action == "approve":
        submissions, digest = _approvable(con, settings, code, period, in_force)
    elif action == "withdraw":
        if in_force is None:
            raise SignoffError(
                f"unit {code} periode {period} belum dikonfirmasi: tidak ada yang ditarik",
                f"unit {code} period {period} is not confirmed: nothing to withdraw",
            )
        submissions = in_force["submission_ids"]
    elif in_force is None:  # unlock
        raise SignoffError(
            f"{code} periode {period} tidak dikunci (belum disetujui): tidak ada yang dibuka",
            f"{code} period {period} is not locked (not approved): nothing to unlock",
        )
    return _record(con, action, code, period, by, note, publication, submissions, digest, now)


def _confirmable(con, settings, code, period, in_force) -> tuple[list[str], str]:
    """A unit confirms its accepted submission of the period, once, as published."""
    accepted = con.execute(
        "select submission_id from raw.submissions "
        "where unit_code = ? and period = ? and status = 'accepted'",
        [code, period],
    ).fetchone()
    if accepted is None:
        raise SignoffError(
            f"unit {code} tidak punya kiriman yang diterima untuk periode {period}",
            f"unit {code} has no accepted submission for period {period}",
        )
    if in_force and in_force["submission_ids"] == [accepted[0]]:
        raise SignoffError(
            f"unit {code} periode {period} sudah dikonfirmasi ({in_force['decided_by']})",
            f"unit {code} period {period} is already confirmed ({in_force['decided_by']})",
        )
    _published_submissions(settings, [code], period, {code: accepted[0]})
    return [accepted[0]], figures_digest(settings, code, period)


def _approvable(con, settings, code, period, in_force) -> tuple[list[str], str]:
    """A region is approved once, when every unit below it has confirmed what is published."""
    if in_force is not None:
        raise SignoffError(
            f"{code} periode {period} sudah disetujui ({in_force['decided_by']}, "
            f"{when(in_force['decided_at'])})",
            f"{code} period {period} is already approved ({in_force['decided_by']}, "
            f"{when(in_force['decided_at'])})",
        )
    if not _has_figures(settings, code, period):
        raise SignoffError(
            f"tidak ada angka {code} periode {period} di publikasi saat ini",
            f"the current publication has no figures of {code} for period {period}",
        )
    units = sorted(u for u in submitting_units() if covers(code, u))
    confirmed = {
        u: c["submission_ids"][0]
        for u in units
        if (c := _in_force(con, u, period, "confirm")) is not None
    }
    missing = [u for u in units if u not in confirmed]
    if missing:
        raise SignoffError(
            f"{len(confirmed)} dari {len(units)} unit sudah konfirmasi; belum: {', '.join(missing)}",
            f"{len(confirmed)} of {len(units)} units have confirmed; not yet: {', '.join(missing)}",
        )
    _published_submissions(settings, units, period, confirmed)
    return [confirmed[u] for u in units], figures_digest(settings, code, period)


def _record(con, action, code, period, by, note, publication, submissions, digest, now):
    previous = con.execute(
        "select decision_id, decided_at from raw.signoffs "
        "order by decided_at desc, decision_id limit 1"
    ).fetchone()
    decided_at = now or dt.datetime.now(dt.UTC)
    if previous is not None and decided_at <= previous[1]:  # the log's order is its time order
        decided_at = previous[1] + dt.timedelta(microseconds=1)
    con.execute("begin transaction")
    try:
        if action == "unlock":  # each unit's newest pending revision, unless another approval
            units = sorted(u for u in submitting_units() if covers(code, u))
            for unit in units:  # (the province's, say) still locks it
                if load.lock_of(con, unit, period, besides=code) is None:
                    released = load.release_pending(con, unit, period)
                    if released:
                        submissions.append(released)
        fields = {
            "previous_id": previous[0] if previous else None,
            "decided_at": decided_at,
            "action": action,
            "region_code": code,
            "period": period,
            "decided_by": by,
            "note": note,
            "publication_id": publication,
            "submission_ids": submissions,
            "figures_digest": digest,
        }
        decision = Decision(
            decision_id=_decision_id(fields), **{**fields, "decided_at": decided_at}
        )
        con.execute(
            "insert into raw.signoffs by name select "
            + ", ".join(f"${k} as {k}" for k in asdict(decision)),
            asdict(decision),
        )
        con.execute("commit")
    except Exception:
        load.rollback(con)
        raise
    return decision


def _decision_id(fields: dict) -> str:
    """SHA-256 of a decision's fields (its time in UTC), the previous decision's id among them."""
    canonical = {**fields, "decided_at": fields["decided_at"].astimezone(dt.UTC).isoformat()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def verify_log(con: duckdb.DuckDBPyConnection) -> list[str]:
    """What is wrong with the sign-off log: a decision whose id is not the hash of its fields (a
    changed row), or whose ``previous_id`` is not the decision before it (a removed or inserted
    one). Empty when the log is intact."""
    problems, previous = [], None
    for row in rows(con, "select * from raw.signoffs order by decided_at, decision_id"):
        fields = {k: v for k, v in row.items() if k != "decision_id"}
        if row["previous_id"] != previous:
            problems.append(f"{row['decision_id'][:12]}: the decision before it is missing")
        if _decision_id(fields) != row["decision_id"]:
            problems.append(f"{row['decision_id'][:12]}: changed after it was recorded")
        previous = row["decision_id"]
    return problems


@dataclass(frozen=True)
class LogState:
    decisions: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def record_log_state(settings: Settings) -> LogState:
    """Verify the log and record the result in ``raw.signoff_log_state``, which the warehouse
    reads: confirmations and approvals are published only from a log found intact. The caller
    holds the build lock."""
    with connect_build(settings) as con:
        (count,) = con.execute("select count(*) from raw.signoffs").fetchone()
        state = LogState(count, verify_log(con))
        con.execute("begin transaction")
        con.execute("delete from raw.signoff_log_state")
        con.execute(
            "insert into raw.signoff_log_state values (now(), ?, ?, ?)",
            [state.decisions, state.intact, state.problems],
        )
        con.execute("commit")
    return state


def _in_force(con: duckdb.DuckDBPyConnection, code: str, period: str, action: str) -> dict | None:
    found = rows(
        con,
        "select decided_by, decided_at, submission_ids from raw.signoffs_in_force "
        "where region_code = ? and period = ? and action = ?",
        [code, period, action],
    )
    return found[0] if found else None


def _published_submissions(
    settings: Settings, units: list[str], period: str, expected: dict[str, str]
) -> None:
    """Refuse unless the current publication was built from exactly these submissions: a
    decision vouches for figures somebody could read."""
    with _published(settings) as con:
        found = dict(
            con.execute(
                "select unit_code, submission_id from fct_submission_status "
                "where period = ? and status = 'accepted' and list_contains(?, unit_code)",
                [period, units],
            ).fetchall()
        )
    stale = [u for u in units if found.get(u) != expected[u]]
    if stale:
        raise SignoffError(
            f"publikasi saat ini tidak memuat kiriman yang dikonfirmasi dari {', '.join(stale)}: "
            "tunggu proses malam berikutnya (atau satudata run), periksa angkanya, lalu konfirmasi "
            "lagi",
            f"the current publication does not hold the confirmed submission of "
            f"{', '.join(stale)}: wait for the next nightly run (or satudata run), check its "
            "figures, then confirm again",
        )


def _has_figures(settings: Settings, region: str, period: str) -> bool:
    with _published(settings) as con:
        return con.execute(
            "select exists (from fct_poverty where region_code = ? and period = ?)",
            [region, period],
        ).fetchone()[0]


def _published(settings: Settings) -> duckdb.DuckDBPyConnection:
    if not settings.published_db.exists():
        raise SignoffError(
            "belum ada publikasi: jalankan pipeline dulu",
            "nothing is published yet: run the pipeline first",
        )
    return duckdb.connect(str(settings.published_db), read_only=True)


def figures_digest(settings: Settings, region: str, period: str) -> str:
    """SHA-256 of the published figures of a region and everything below it for a period: the
    three fact tables' rows (without their approval columns), in a fixed order."""
    digest = hashlib.sha256()
    with _published(settings) as con:
        for table in FIGURE_TABLES:
            columns = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns where table_name = ? "
                    "order by ordinal_position",
                    [table],
                ).fetchall()
                if name not in APPROVAL_COLUMNS
            ]
            rows = con.execute(
                f"select {', '.join(columns)} from {table} where period = $period "
                f"and {covers_sql('$region', 'region_code')} order by all",
                {"period": period, "region": region},
            ).fetchall()
            digest.update(f"{table}|{'|'.join(columns)}\n".encode())
            for row in rows:
                digest.update(("|".join(repr(v) for v in row) + "\n").encode())
    return digest.hexdigest()
