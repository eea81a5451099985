"""The contract's row rules as DuckDB SQL over the text views ``src_<table>``.

For each table it builds ``chk_<table>``: every column trimmed (``<col>``), parsed
(``v_<col>``) and judged (``e_<col>``: a reason code or null), then collects one
``rejects`` row per rejected (line, column). Accepted rows are those without any
reason; ``DUPLICATE_KEY`` and ``ORPHAN`` need the whole table and are added after
the per-row rules.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from .contract import (
    MAX_AGE,
    REJECT_SHARE_LIMIT,
    SCHEMA,
    TEXT_KINDS,
    WORKING_AGE,
    Column,
    Manifest,
    QuarantineError,
)

MACROS = (Path(__file__).parent / "rules.sql").read_text()


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(MACROS)


def _lit(value: dt.date | str) -> str:
    if isinstance(value, dt.date):
        return f"date '{value.isoformat()}'"
    return "'" + value.replace("'", "''") + "'"


def _parse(col: Column) -> str:
    c = f'"{col.name}"'
    match col.kind:
        case "kk":
            return f"case when sd_is16({c}) then {c} end"
        case "nik":  # its ddmmyy, computed once beside it (see ``_check_table``)
            return f'case when sd_ddmmyy_ok("n_{col.name}") then {c} end'
        case "name":
            return "null"
        case "desa":
            return f"sd_region({c})"
        case "int":
            return f"sd_int({c})"
        case "rupiah":
            return f"sd_rupiah({c})"
        case "date":
            return f"sd_date({c})"
        case "category":
            fold = "lower" if col.name == "status_pekerjaan" else "upper"
            values = ", ".join(_lit(v) for v in col.values)
            return f"case when {fold}({c}) in ({values}) then {fold}({c}) end"
        case "program":
            return f"case when upper({c}) in (select code from ref_programs) then upper({c}) end"
    raise ValueError(col.kind)


def _judge(table: str, col: Column, ctx: Manifest) -> str:
    """A CASE that yields the column's reason code, or null when the value is fine."""
    c, v = f'"{col.name}"', f'"v_{col.name}"'
    missing = "'REQUIRED_MISSING'" if col.required else "null"
    whens = []
    if table == "anggota" and col.name == "status_pekerjaan":
        whens += [  # (no age rule when the birth date is itself rejected: age_years is null)
            f"when {c} is null and age_years >= {WORKING_AGE} then 'REQUIRED_MISSING'",
            f"when {c} is null then null",
            f"when age_years < {WORKING_AGE} then 'NOT_APPLICABLE'",
        ]
    elif table == "anggota" and col.name == "lapangan_usaha":
        whens += [
            f"when {c} is null and v_status_pekerjaan = 'bekerja' then 'REQUIRED_MISSING'",
            f"when {c} is null then null",
            "when v_status_pekerjaan is not null and v_status_pekerjaan <> 'bekerja' "
            "then 'NOT_APPLICABLE'",
        ]
    else:
        whens.append(f"when {c} is null then {missing}")
    match col.kind:
        case "kk" | "nik":
            invalid = "'KK_INVALID'" if col.kind == "kk" else "'NIK_INVALID'"
            whens += [  # (the pattern tried only on values that are not a valid id)
                f"when {v} is null and sd_numeric_id({c}) then 'ID_NOT_TEXT'",
                f"when {v} is null then {invalid}",
            ]
        case "desa":
            prefix = _lit(ctx.unit_code + ".")
            whens += [
                f"when {v} is null or {v} not in (select code from ref_villages) then 'DESA_UNKNOWN'",
                f"when not starts_with({v}, {prefix}) then 'DESA_OUTSIDE_WILAYAH'",
            ]
        case "int":
            whens += [
                f"when {v} is null then 'VALUE_UNPARSEABLE'",
                f"when {v} not between {col.low} and {col.high} then 'VALUE_OUT_OF_RANGE'",
            ]
        case "rupiah":
            whens += [
                f"when {v} is null then 'VALUE_UNPARSEABLE'",
                f"when {v} < 0 then 'VALUE_OUT_OF_RANGE'",
            ]
        case "date":
            whens.append(f"when {v} is null then 'VALUE_UNPARSEABLE'")
            bound = {
                "tanggal_verifikasi": f"{v} > {_lit(ctx.submitted_at.date())}",
                "tanggal_lahir": f"{v} > {_lit(ctx.period_end)}",
                "tanggal_salur": f"{v} not between {_lit(ctx.period_start)} and {_lit(ctx.period_end)}",
            }[col.name]
            whens.append(f"when {bound} then 'DATE_OUT_OF_PERIOD'")
            if table == "anggota" and col.name == "tanggal_lahir":
                whens.append(f"when age_years > {MAX_AGE} then 'VALUE_OUT_OF_RANGE'")
        case "category":
            whens.append(f"when {v} is null then 'CATEGORY_INVALID'")
        case "program":
            whens.append(f"when {v} is null then 'PROGRAM_UNKNOWN'")
    return "case " + " ".join(whens) + " end"


def _check_table(con: duckdb.DuckDBPyConnection, table: str, ctx: Manifest) -> None:
    cols = SCHEMA[table]
    trimmed = ", ".join(f'sd_blank("{c.name}") as "{c.name}"' for c in cols)
    niks = [f'"n_{c.name}"' for c in cols if c.kind == "nik"]
    digits = "".join(
        f', sd_nik_ddmmyy("{c.name}") as "n_{c.name}"' for c in cols if c.kind == "nik"
    )
    parsed = ", ".join(f'{_parse(c)} as "v_{c.name}"' for c in cols)
    judged = ", ".join(f'{_judge(table, c, ctx)} as "e_{c.name}"' for c in cols)
    helpers = f"exclude ({', '.join(niks)})" if niks else ""
    aged = ""
    if table == "anggota":  # age in full years at the period's last day, once, for rules and load
        end = _lit(ctx.period_end)
        aged = f", case when v_tanggal_lahir <= {end} then sd_age(v_tanggal_lahir, {end}) end as age_years"
    con.execute(
        f"""
        create or replace temp table chk_{table} as
        with trimmed as (select line, {trimmed} from src_{table}),
             digits as (select *{digits} from trimmed),
             parsed as (select *, {parsed} from digits),
             aged as (select *{aged} from parsed)
        select * {helpers}, {judged} from aged
        """
    )


def _add_duplicates(con: duckdb.DuckDBPyConnection, table: str, key: str) -> None:
    con.execute(
        f"""
        update chk_{table} set e_{key} = 'DUPLICATE_KEY'
        where e_{key} is null and v_{key} in (
            select v_{key} from chk_{table} where v_{key} is not null
            group by all having count(*) > 1)
        """
    )


def _rejected_condition(table: str) -> str:
    return " or ".join(f'"e_{c.name}" is not null' for c in SCHEMA[table])


def _add_orphans(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(
        f"""
        update chk_{table} set e_no_kk = 'ORPHAN'
        where e_no_kk is null and v_no_kk not in (
            select v_no_kk from chk_keluarga where not ({_rejected_condition("keluarga")}))
        """
    )


def validate(con: duckdb.DuckDBPyConnection, manifest: Manifest, sources: dict) -> dict:
    """Judge every row of the ``src_*`` views: builds the ``chk_*`` tables and the ``rejects``
    table, and returns each table's counts. More than ``REJECT_SHARE_LIMIT`` of keluarga's or
    anggota's rows rejected quarantines the submission (a systematic format fault)."""
    install_macros(con)
    for table in SCHEMA:
        _check_table(con, table, manifest)
    _add_duplicates(con, "keluarga", "no_kk")
    _add_duplicates(con, "anggota", "nik")
    _add_orphans(con, "anggota")
    _add_orphans(con, "bantuan")
    unions = []
    for table, cols in SCHEMA.items():
        for col in cols:
            cause = "null::bigint"
            if table != "keluarga" and col.name == "no_kk":  # the household an ORPHAN points to
                cause = (
                    "case when e_no_kk = 'ORPHAN' then (select min(k.line) from chk_keluarga k "
                    f"where k.v_no_kk = chk_{table}.v_no_kk) end"
                )
            unions.append(
                f"select '{table}' as table_name, line, '{col.name}' as column_name, "
                f'"{col.name}" as value, "e_{col.name}" as reason_code, '
                f"{_sensitive(col)} as personal, {cause} as cause_line "
                f'from chk_{table} where "e_{col.name}" is not null'
            )
    con.execute("create or replace temp table rejects as " + " union all ".join(unions))
    counts = _counts(con, sources)
    too_many = [
        f"{t}: {counts[t]['rejected']} of {counts[t]['rows']} rows"
        for t in ("keluarga", "anggota")
        if counts[t]["rows"] and counts[t]["rejected"] / counts[t]["rows"] > REJECT_SHARE_LIMIT
    ]
    if too_many:
        raise QuarantineError("TOO_MANY_REJECTS", f"rejected {', '.join(too_many)}", counts)
    return counts


def _sensitive(col: Column) -> str:
    """Whether a rejected value of ``col`` may be personal data, as SQL: always for the personal
    columns and for text typed where a code belongs (a name in jenis_kelamin); elsewhere when it
    looks like an identifier (15 or more digits: a NIK or No. KK in the wrong column)."""
    if col.personal or col.kind in TEXT_KINDS:
        return "true"
    return f"""coalesce(length(regexp_replace("{col.name}", '[^0-9]', '', 'g')) >= 15, false)"""


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


def accepted_filter(table: str) -> str:
    """SQL condition selecting the accepted rows of ``chk_<table>``."""
    return f"not ({_rejected_condition(table)})"
