"""The raw stage: one submission's outcome decided and written to the build file.

Which submission counts for a unit and period (supersession) is decided here, once:
``raw.submissions.status`` is ``accepted`` for exactly that one, and the warehouse reads it.
Everything a submission leaves in the build file (its accepted rows with identifiers replaced
by keyed pseudonyms, its rejects, its register row, the predecessor it supersedes) is written in
one transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os

import duckdb

from orchestration.settings import KEY_ENV, PseudonymKeyError, Settings

from .contract import TABLES, WORKING_AGE, Manifest, covers_sql
from .submission import Submission
from .validate import accepted_filter


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
        self.params = {"ipad": bytes(b ^ 0x36 for b in key), "opad": bytes(b ^ 0x5C for b in key)}

    @staticmethod
    def hex_sql(expr: str) -> str:
        """The pseudonym as 32 hexadecimal characters (for text columns)."""
        mac = f"sha256($opad || unhex(sha256($ipad || encode({expr}))))"
        return f"case when {expr} is not null then left({mac}, 32) end"

    @classmethod
    def sql(cls, expr: str) -> str:
        # (text columns use hex_sql: a UHUGEINT cast to text is slow in DuckDB)
        return f"('0x' || {cls.hex_sql(expr)})::uhugeint"


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


def pseudonymise_rejects(con: duckdb.DuckDBPyConnection, pseudo: Pseudonymiser) -> None:
    """Each personal value of the temp table ``rejects`` gets its pseudonym (``pseudonym``, 32
    hexadecimal characters), once: the report tags masked values with its first four, and
    ``record`` keeps it in place of the value."""
    con.execute("alter table rejects add column if not exists pseudonym varchar")
    con.execute(
        f"update rejects set pseudonym = {pseudo.hex_sql('value')} where personal", pseudo.params
    )


KEY_CHECK = b"satudata: the key these pseudonyms were made with"


def checked_key(con: duckdb.DuckDBPyConnection, settings: Settings) -> bytes:
    """The pseudonym key, if it is the one the build file's pseudonyms were made with.

    The build file keeps the key's fingerprint. A key is generated only for a warehouse that
    holds no pseudonyms yet; a missing or different key stops ingestion before anything is
    read (``PseudonymKeyError``), where it would silently give the same people new pseudonyms.
    """
    (made,) = con.execute("select any_value(fingerprint) from raw.pseudonym_key").fetchone()
    (holds,) = con.execute(
        "select exists (from raw.households) or exists (from raw.members) "
        "or exists (from raw.rejects)"
    ).fetchone()
    key = settings.pseudonym_key(create=made is None and not holds)
    fingerprint = hmac.new(key, KEY_CHECK, hashlib.sha256).hexdigest()
    if made is None:
        con.execute("insert into raw.pseudonym_key values (?)", [fingerprint])
    elif made != fingerprint:
        raise PseudonymKeyError(
            f"The pseudonym key ({'$' + KEY_ENV if os.environ.get(KEY_ENV) else settings.key_file})"
            " is not the one the warehouse's pseudonyms were made with. Restore the right key "
            "from your backup and run again (docs/operations.md)."
        )
    return key


def lock_of(
    con: duckdb.DuckDBPyConnection, unit_code: str, period: str, besides: str = ""
) -> tuple | None:
    """(region, approved by, approved at) of an approval in force that locks the unit's
    period (the most specific region; not the region ``besides``), or None."""
    return con.execute(
        "select region_code, decided_by, decided_at from raw.signoffs_in_force "
        f"where action = 'approve' and period = $period and {covers_sql('region_code', '$unit')} "
        "and region_code <> $besides "
        "order by length(region_code) desc limit 1",
        {"period": period, "unit": unit_code, "besides": besides},
    ).fetchone()


def decide(
    con: duckdb.DuckDBPyConnection, manifest: Manifest
) -> tuple[str, str | None, str | None, tuple | None]:
    """(status, the submission it supersedes, the submission that supersedes it, the lock that
    holds it): the newest ``dikirim_pada`` counts for its unit and period; on a tie, the one
    received first. A newer one for an approved (locked) period is held as ``pending`` (one per
    unit and period: a newer pending one supersedes an older) until the period is unlocked
    (``release_pending``)."""
    current = con.execute(
        "select submission_id, submitted_at, status from raw.submissions "
        "where unit_code = ? and period = ? and status in ('accepted', 'pending') "
        "order by status = 'pending' desc limit 1",
        [manifest.unit_code, manifest.period],
    ).fetchone()
    if current is None:
        return "accepted", None, None, None
    if manifest.submitted_at <= current[1]:
        return "superseded", None, current[0], None
    lock = lock_of(con, manifest.unit_code, manifest.period)
    if lock is not None:
        return "pending", current[0] if current[2] == "pending" else None, None, lock
    return "accepted", current[0], None, None


def release_pending(con: duckdb.DuckDBPyConnection, unit_code: str, period: str) -> str | None:
    """After an unlock: the unit's pending submission for the period (newer than the accepted
    one, by ``decide``) becomes the one that counts, and supersedes the one accepted before.
    Returns it, or None. The caller holds the transaction."""
    pending = con.execute(
        "select submission_id from raw.submissions "
        "where unit_code = ? and period = ? and status = 'pending'",
        [unit_code, period],
    ).fetchone()
    if pending is None:
        return None
    con.execute(
        "update raw.submissions set status = 'superseded', superseded_by = ? "
        "where unit_code = ? and period = ? and status = 'accepted'",
        [pending[0], unit_code, period],
    )
    con.execute(
        "update raw.submissions set status = 'accepted' where submission_id = ?", [pending[0]]
    )
    return pending[0]


def record(
    con: duckdb.DuckDBPyConnection, sub: Submission, pseudo: Pseudonymiser, report_path: str
) -> None:
    """Write the submission's outcome to the build file, all of it or nothing."""
    accepted = sub.status != "quarantined"  # (superseded and pending rows are kept too)
    count = {t: sub.counts.get(t, {}) for t in TABLES}
    register = {
        "submission_id": sub.submission_id,
        "landing_name": sub.landing_name,
        "source_format": sub.source_format,
        "unit_code": sub.unit_code,
        "period": sub.period,
        "submitted_at": sub.manifest.submitted_at if sub.manifest else None,
        "received_at": sub.received.received_at,
        "status": sub.status,
        "reason_code": sub.quarantine.cause if sub.quarantine else None,
        "reason": sub.quarantine.detail if sub.quarantine else None,
        "superseded_by": sub.replaced_by,
        **{
            f"{name}_{kind}": count[table].get("rows" if kind == "received" else "accepted")
            if kind == "received" or accepted
            else 0
            for table, name in (
                ("keluarga", "households"),
                ("anggota", "members"),
                ("bantuan", "receipts"),
            )
            for kind in ("received", "accepted")
        },
        "rows_rejected": sub.rows_rejected,
        "report_path": report_path,
    }
    keys = {
        "p_kk": pseudo.sql("v_no_kk"),
        "p_nik": pseudo.sql("v_nik"),
        "p_head": pseudo.sql("v_nik_kepala"),
        "working_age": WORKING_AGE,
        **{f"ok_{t}": accepted_filter(t) for t in TABLES},
    }
    con.execute("begin transaction")
    try:
        if accepted:
            for sql in LOAD_SQL.values():
                sql = sql.format(**keys)
                params = {"sid": sub.submission_id, **pseudo.params}
                con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        if sub.replaces:
            con.execute(
                "update raw.submissions set status = 'superseded', superseded_by = ? "
                "where submission_id = ?",
                [sub.submission_id, sub.replaces],
            )
        if sub.counts:  # (pseudonyms made by ``pseudonymise_rejects``)
            con.execute(
                "insert into raw.rejects select $sid, table_name, line, column_name, "
                "case when column_name in ('nama', 'nama_kepala') then null "  # names: never kept
                "when personal then pseudonym else value end, reason_code "
                "from rejects",
                {"sid": sub.submission_id},
            )
        columns = ", ".join(f"${name} as {name}" for name in register)
        con.execute(f"insert into raw.submissions by name select {columns}", register)
        con.execute("commit")
    except Exception:
        rollback(con)
        raise


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction; a commit that failed has none left, and its error is the
    one that counts."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("rollback")
