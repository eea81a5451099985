"""One submission from landing to the build DuckDB file.

archive (bytes, by SHA-256) → manifest → read tables → validate → decide
(accepted / superseded / quarantined) → load in one transaction → report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from ..settings import INGEST_WORKERS, Settings
from . import reader
from .contract import (
    REJECT_SHARE_LIMIT,
    SCHEMA,
    TABLES,
    WORKING_AGE,
    QuarantineError,
    required_columns,
)
from .report import build_report, copy_report, install_reasons, reject_summary, write_report
from .store import build_lock, connect_build, install_reference, submitting_units
from .validate import Context, accepted_filter, validate

log = logging.getLogger(__name__)
WITA = ZoneInfo("Asia/Makassar")
PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass
class Outcome:
    submission_id: str
    landing_name: str
    status: str  # accepted | superseded | quarantined | duplicate
    unit_code: str | None = None
    period: str | None = None
    reason_code: str | None = None
    detail: str | None = None
    counts: dict = field(default_factory=dict)
    rows_rejected: int = 0
    report_path: str | None = None


class Pseudonymiser:
    """HMAC-SHA256 in DuckDB SQL: sha256(K^opad || sha256(K^ipad || m)), kept as a UHUGEINT.

    The key's pads travel only as statement parameters: never in SQL text or a table.
    The pseudonym is the MAC's first 128 bits (truncation as RFC 2104 §5 allows: at least half
    the output). A 16-byte integer instead of 64 hexadecimal characters makes every join,
    grouping and uniqueness test on persons and households downstream cheaper and the build
    file smaller; two of 300 million identifiers collide with probability below 1e-21.
    """

    def __init__(self, key: bytes):
        if len(key) > 64:  # as HMAC does: a long key is hashed first
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.params = {
            "ipad": bytes(b ^ 0x36 for b in key),
            "opad": bytes(b ^ 0x5C for b in key),
        }

    @staticmethod
    def hex_sql(expr: str) -> str:
        """The pseudonym as 32 hexadecimal characters (for text columns)."""
        mac = f"sha256($opad || unhex(sha256($ipad || encode({expr}))))"
        return f"case when {expr} is not null then left({mac}, 32) end"

    @classmethod
    def sql(cls, expr: str) -> str:
        # (a UHUGEINT cast to text is slow in DuckDB: 34 µs a value, so text columns use hex_sql)
        return f"('0x' || {cls.hex_sql(expr)})::uhugeint"


def normalise_unit_code(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    code = raw.strip()
    digits = code.replace(".", "")
    if not digits.isdigit() or len(digits) not in (2, 4, 6, 10):
        return None
    parts = [digits[:2], digits[2:4], digits[4:6], digits[6:]]
    return ".".join(p for p in parts if p)


@dataclass
class Manifest:
    unit_code: str
    period: str
    period_start: dt.date
    period_end: dt.date
    submitted_at: dt.datetime
    raw: dict


def parse_manifest(raw: dict, units: dict[str, str], now: dt.datetime) -> Manifest:
    for key in ("kode_wilayah", "periode", "dikirim_pada"):
        if raw.get(key) in (None, ""):
            raise QuarantineError("MANIFEST_INVALID", f"manifest.json has no {key}")
    sent_text = raw["dikirim_pada"]
    try:
        submitted_at = dt.datetime.fromisoformat(str(sent_text))
    except ValueError as exc:
        raise QuarantineError(
            "MANIFEST_INVALID", f"dikirim_pada {sent_text!r} is not ISO 8601"
        ) from exc
    if submitted_at.tzinfo is None:
        raise QuarantineError(
            "MANIFEST_INVALID", f"dikirim_pada {sent_text!r} has no UTC offset (WITA is +08:00)"
        )
    unit = normalise_unit_code(raw["kode_wilayah"])
    if unit is None or unit not in units:
        raise QuarantineError(
            "UNIT_NOT_REGISTERED", f"kode_wilayah {raw['kode_wilayah']!r} is not a registered unit"
        )
    match = PERIOD_RE.match(str(raw["periode"]).strip())
    if not match:
        raise QuarantineError("PERIOD_INVALID", f"periode {raw['periode']!r} is not YYYY-MM")
    year, month = int(match[1]), int(match[2])
    start = dt.date(year, month, 1)
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    today = now.astimezone(WITA).date()
    if start > today:
        raise QuarantineError("PERIOD_INVALID", f"periode {raw['periode']} is in the future")
    return Manifest(unit, f"{year:04d}-{month:02d}", start, end, submitted_at, raw)


def read_tables(
    con: duckdb.DuckDBPyConnection, folder: Path, workdir: Path
) -> dict[str, reader.SourceTable]:
    wanted = {t: [c.name for c in SCHEMA[t]] for t in TABLES}
    csvs = {t: reader.find_case_insensitive(folder, f"{t}.csv") for t in TABLES}
    workbooks = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".xlsx")
    if all(csvs.values()):
        sources = {t: reader.read_csv_table(con, t, csvs[t], wanted[t], workdir) for t in TABLES}
    elif workbooks and not any(csvs.values()):
        identifiers = {t: {c.name for c in SCHEMA[t] if c.kind in ("kk", "nik")} for t in TABLES}
        sources = reader.read_xlsx_tables(con, workbooks[0], wanted, identifiers)
    else:
        missing = [f"{t}.csv" for t, p in csvs.items() if p is None]
        raise QuarantineError(
            "FILE_MISSING",
            f"missing {', '.join(missing)} (or one .xlsx with sheets keluarga, anggota, bantuan)",
        )
    for table, source in sources.items():
        absent = [c for c in required_columns(table) if c not in source.columns]
        if absent:
            raise QuarantineError(
                "COLUMN_MISSING", f"{source.file}: missing column(s) {', '.join(absent)}"
            )
    if sources["keluarga"].rows == 0:
        raise QuarantineError("KELUARGA_EMPTY", f"{sources['keluarga'].file} has no data rows")
    return sources


# No. KK is pseudonymised once per accepted household (``kk_keys``) and joined to members and
# receipts: the ORPHAN rule guarantees each accepted member and receipt has an accepted
# household, and the NOT NULL constraints of the raw tables would refuse a row that had not.
LOAD_SQL = {
    "kk_keys": """
        create or replace temp table kk_keys as
        select v_no_kk, {p_kk} as household_key from chk_keluarga where {ok_keluarga}
    """,
    "households": """
        insert into raw.households
        select $sid, line, kk_keys.household_key, {p_head}, v_kode_desa, v_jumlah_anggota,
               v_pengeluaran_per_kapita, v_desil, v_tanggal_verifikasi
        from chk_keluarga left join kk_keys using (v_no_kk) where {ok_keluarga}
    """,
    "members": """
        insert into raw.members
        select $sid, line, {p_nik}, kk_keys.household_key, v_jenis_kelamin,
               case when sd_nik_day(v_nik) > 40 then 'P' else 'L' end,
               v_tanggal_lahir, v_status_pekerjaan, v_lapangan_usaha,
               age_years, age_years >= {working_age}
        from chk_anggota left join kk_keys using (v_no_kk) where {ok_anggota}
    """,
    "receipts": """
        insert into raw.receipts
        select $sid, line, kk_keys.household_key, {p_nik}, v_kode_program, v_tanggal_salur, v_nilai
        from chk_bantuan left join kk_keys using (v_no_kk) where {ok_bantuan}
    """,
}


class _ArrivalOrder:
    """Submissions of one unit and period are decided and loaded in arrival order.

    Whether a submission is accepted or superseded depends on the one accepted before it for
    the same unit and period, so two of those must not be loaded at once, nor out of order
    (on equal ``dikirim_pada`` the first to arrive stays accepted). Positions are handed to the
    workers in arrival order, so every earlier one has started: waiting cannot deadlock.
    """

    _NOBODY = object()

    def __init__(self, size: int):
        self._keys: list[object] = [None] * size  # (unit, period) once known
        self._done = [False] * size
        self._cond = threading.Condition()

    def known(self, position: int, key: tuple[str, str] | None) -> None:
        with self._cond:
            if self._keys[position] is None:
                self._keys[position] = key if key is not None else self._NOBODY
                self._cond.notify_all()

    def finished(self, position: int) -> None:
        with self._cond:
            self._done[position] = True
            if self._keys[position] is None:
                self._keys[position] = self._NOBODY
            self._cond.notify_all()

    def wait_turn(self, position: int) -> None:
        key = self._keys[position]

        def earlier_are_out_of_the_way() -> bool:
            return all(
                self._keys[k] is not None and (self._keys[k] != key or self._done[k])
                for k in range(position)
            )

        with self._cond:
            self._cond.wait_for(earlier_are_out_of_the_way)


class Ingestor:
    """Ingests the ready submissions of ``landing/`` into ``warehouse/build.duckdb``."""

    def __init__(
        self, settings: Settings, now: dt.datetime | None = None, workers: int = INGEST_WORKERS
    ):
        self.settings = settings.ensure()
        self.now = now
        self.workers = workers
        self.units = submitting_units()
        self.pseudo = Pseudonymiser(settings.pseudonym_key())

    def run(self) -> list[Outcome]:
        """Every ready submission, two at a time (``SATUDATA_INGEST_WORKERS``).

        Each is archived first, here and in arrival order; then read, validated and loaded on a
        connection of its own. Submissions of one unit and period are decided and loaded in the
        order they arrived (``_ArrivalOrder``), exactly as one at a time would be.
        """
        with build_lock(self.settings):
            con = connect_build(self.settings)
            try:
                return self._run(con)
            finally:
                con.close()

    def _run(self, con: duckdb.DuckDBPyConnection) -> list[Outcome]:
        entries = reader.discover(self.settings.landing)
        outcomes: list[Outcome | None] = [None] * len(entries)
        batch: list[tuple[int, reader.Received, dt.datetime]] = []
        repeated: list[tuple[int, reader.Received]] = []
        for index, entry in enumerate(entries):
            now = self.now or dt.datetime.now(dt.UTC)
            received = reader.archive_submission(entry, self.settings.archive, now)
            if any(r.submission_id == received.submission_id for _, r, _ in batch):
                repeated.append((index, received))  # the same bytes twice: see below
                continue
            outcomes[index] = self._duplicate(con, received)
            if outcomes[index] is None:
                batch.append((index, received, now))
        order = _ArrivalOrder(len(batch))
        local = threading.local()
        cursors: list[duckdb.DuckDBPyConnection] = []

        def one(position: int, received: reader.Received, now: dt.datetime) -> Outcome:
            if not hasattr(local, "con"):
                local.con = con.cursor()  # temp tables and macros are per connection
                cursors.append(local.con)
                install_reference(local.con)
                install_reasons(local.con)
            try:
                return self.ingest(local.con, received, now, order, position)
            finally:
                order.finished(position)

        try:
            with ThreadPoolExecutor(min(self.workers, max(1, len(batch)))) as pool:
                futures = [pool.submit(one, k, r, n) for k, (_, r, n) in enumerate(batch)]
                for future in as_completed(futures):
                    if future.exception() is not None:  # stop as one at a time would
                        for k, other in enumerate(futures):
                            if other.cancel():
                                order.finished(k)
                        break
        finally:
            for cursor in cursors:
                cursor.close()
        errors = [f.exception() for f in futures if not f.cancelled() and f.exception()]
        if errors:
            raise errors[0]
        for (index, _, _), future in zip(batch, futures, strict=True):
            outcomes[index] = future.result()
        # a second copy of bytes that arrived twice in one batch: the first is in the register now
        for index, received in repeated:
            outcomes[index] = self._duplicate(con, received)
        return [o for o in outcomes if o is not None]

    def _duplicate(
        self, con: duckdb.DuckDBPyConnection, received: reader.Received
    ) -> Outcome | None:
        """The outcome of a submission already in the register, or None."""
        sid, entry = received.submission_id, received.entry
        known = con.execute(
            "select status from raw.submissions where submission_id = ?", [sid]
        ).fetchone()
        if not known:
            return None
        log.info("%s: already received as %s (%s); nothing to do", entry.name, sid[:12], known[0])
        self._remove(entry)
        return Outcome(sid, entry.name, "duplicate")

    # -- one submission ---------------------------------------------------------------------
    def ingest(
        self,
        con: duckdb.DuckDBPyConnection,
        received: reader.Received,
        now: dt.datetime,
        order: _ArrivalOrder,
        position: int,
    ) -> Outcome:
        workdir = Path(tempfile.mkdtemp(prefix="ingest-", dir=self._tmp()))
        manifest: Manifest | None = None
        sources: dict[str, reader.SourceTable] = {}
        manifest_raw: dict = {}
        counts: dict = {}  # filled once the rows are validated
        try:
            try:
                folder = reader.unpack(received, workdir)
                manifest_raw = reader.read_manifest(folder)
                manifest = parse_manifest(manifest_raw, self.units, now)
                order.known(position, (manifest.unit_code, manifest.period))
                sources = read_tables(con, folder, workdir)
                ctx = Context(
                    manifest.unit_code,
                    manifest.period_start,
                    manifest.period_end,
                    manifest.submitted_at.date(),
                )
                validate(con, ctx)
                counts = self._counts(con, sources)
                too_many = [
                    t
                    for t in ("keluarga", "anggota")
                    if counts[t]["rows"]
                    and counts[t]["rejected"] / counts[t]["rows"] > REJECT_SHARE_LIMIT
                ]
                if too_many:
                    share = ", ".join(
                        f"{t}: {counts[t]['rejected']} of {counts[t]['rows']} rows"
                        for t in too_many
                    )
                    raise QuarantineError("TOO_MANY_REJECTS", f"rejected {share}")
                quarantine = None
            except QuarantineError as exc:
                quarantine = exc
            order.known(position, None)  # no unit and period: nobody waits on it
            if manifest:
                order.wait_turn(position)
            return self._record(
                con, received, manifest, manifest_raw, sources, counts, quarantine, now
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            for table in TABLES:
                con.execute(f"drop view if exists src_{table}")
            for name in (
                "rejects",
                "kk_keys",
                *(f"{p}_{t}" for p in ("raw_src", "chk") for t in TABLES),
            ):
                con.execute(f"drop table if exists {name}")

    # -- helpers ----------------------------------------------------------------------------
    def _tmp(self) -> Path:
        path = self.settings.home / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def _counts(con: duckdb.DuckDBPyConnection, sources: dict) -> dict:
        counts = {}
        for table, source in sources.items():
            rejected = con.execute(
                "select count(distinct line) from rejects where table_name = ?", [table]
            ).fetchone()[0]
            counts[table] = {
                "file": source.file,
                "format": source.fmt,
                "encoding": source.encoding,
                "delimiter": source.delimiter,
                "rows": source.rows,
                "accepted": source.rows - rejected,
                "rejected": rejected,
                "ignored_columns": source.ignored_columns,
            }
        return counts

    def _decide(self, con, manifest: Manifest) -> tuple[str, str | None, str | None]:
        """(status of the new submission, submission it supersedes, submission that supersedes it)."""
        current = con.execute(
            "select submission_id, submitted_at from raw.submissions "
            "where unit_code = ? and period = ? and status = 'accepted'",
            [manifest.unit_code, manifest.period],
        ).fetchone()
        if current is None:
            return "accepted", None, None
        if manifest.submitted_at > current[1]:
            return "accepted", current[0], None
        return "superseded", None, current[0]

    def _record(
        self, con, received, manifest, manifest_raw, sources, counts, quarantine, now
    ) -> Outcome:
        sid = received.submission_id
        unit = (
            manifest.unit_code
            if manifest
            else normalise_unit_code(manifest_raw.get("kode_wilayah"))
        )
        period = manifest.period if manifest else None
        status, replaces, replaced_by = (
            ("quarantined", None, None) if quarantine else self._decide(con, manifest)
        )
        by_reason, first_rejects = reject_summary(con) if counts else ({}, [])
        label = f"{unit or 'unknown'}_{period or 'unknown'}_{sid[:12]}"
        report_dir = self.settings.reports / (unit or "unknown") / (period or "unknown")
        report = build_report(
            submission_id=sid,
            landing_name=received.entry.name,
            received_at=now.isoformat(),
            unit_code=unit,
            unit_name=self.units.get(unit or ""),
            period=period,
            submitted_at=manifest.submitted_at.isoformat()
            if manifest
            else manifest_raw.get("dikirim_pada"),
            petugas=manifest_raw.get("petugas"),
            status=status,
            reason_code=quarantine.cause if quarantine else None,
            detail=quarantine.detail if quarantine else None,
            superseded_by=replaced_by,
            files=[{k: f[k] for k in ("path", "sha256", "size")} for f in received.files],
            tables=counts,
            rejects_by_reason=by_reason,
        )
        report_path = report_dir / f"{label}.json"
        rows_rejected = sum(c["rejected"] for c in counts.values())
        con.execute("begin transaction")
        try:
            if status != "quarantined":
                for sql in LOAD_SQL.values():
                    sql = sql.format(
                        p_kk=self.pseudo.sql("v_no_kk"),
                        p_nik=self.pseudo.sql("v_nik"),
                        p_head=self.pseudo.sql("v_nik_kepala"),
                        working_age=WORKING_AGE,
                        **{f"ok_{t}": accepted_filter(t) for t in TABLES},
                    )
                    params = {"sid": sid, **self.pseudo.params}
                    con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
            if replaces:
                con.execute(
                    "update raw.submissions set status = 'superseded', superseded_by = ? "
                    "where submission_id = ?",
                    [sid, replaces],
                )
            if counts:
                con.execute(
                    "insert into raw.rejects select $sid, table_name, line, column_name, "
                    "case when column_name in ('nama', 'nama_kepala') then null "  # names: never kept
                    f"when personal then {self.pseudo.hex_sql('value')} else value end, reason_code "
                    "from rejects",
                    {"sid": sid, **self.pseudo.params},
                )
            count = {t: counts.get(t, {}) for t in TABLES}
            con.execute(
                "insert into raw.submissions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    sid,
                    received.entry.name,
                    next((s.fmt for s in sources.values()), None),
                    unit,
                    period,
                    manifest.submitted_at if manifest else None,
                    now,
                    status,
                    quarantine.cause if quarantine else None,
                    quarantine.detail if quarantine else None,
                    replaced_by,
                    count["keluarga"].get("rows"),
                    count["keluarga"].get("accepted") if status != "quarantined" else 0,
                    count["anggota"].get("rows"),
                    count["anggota"].get("accepted") if status != "quarantined" else 0,
                    count["bantuan"].get("rows"),
                    count["bantuan"].get("accepted") if status != "quarantined" else 0,
                    rows_rejected,
                    str(report_path),
                ],
            )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        written = write_report(report, report_dir, label, con if counts else None, first_rejects)
        if status == "quarantined":
            target = self.settings.quarantine / label
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(received.entry), target / received.entry.name)
            copy_report(written, target, "laporan_validasi_validation_report")
            log.warning(
                "%s: quarantined (%s) %s", received.entry.name, quarantine.cause, quarantine.detail
            )
        else:
            self._remove(received.entry)
            log.info(
                "%s: %s, unit %s period %s, %d rows rejected",
                received.entry.name,
                status,
                unit,
                period,
                rows_rejected,
            )
        return Outcome(
            sid,
            received.entry.name,
            status,
            unit,
            period,
            quarantine.cause if quarantine else None,
            quarantine.detail if quarantine else None,
            counts,
            rows_rejected,
            str(report_path),
        )

    @staticmethod
    def _remove(entry: Path) -> None:
        """The bytes are archived: the landing copy can go."""
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.exists():
            entry.unlink()


def ingest_landing(settings: Settings, now: dt.datetime | None = None) -> list[Outcome]:
    return Ingestor(settings, now).run()
