"""Demo submissions: realistic registers for every registered unit, as operators send them.

Households, members and receipts are generated in DuckDB SQL (deterministic: every
random draw is a hash of the row number and a salt). Per-capita expenditure is
log-normal around the regency's poverty line, calibrated so that the share of poor
households follows the regency's latest BPS P0 in the reference data. Villages are
real Kemendagri codes, NIKs carry the birth date (+40 for women).

A few units write the way real operators do: Windows-1252 with ``;`` and
``Rp 1.250.000`` (Bontang Barat), a BOM and upper-case headers (Bontang Utara), a
workbook (Mahakam Ulu), a zip with a top folder (Penajam Paser Utara); Bontang Selatan
sends a revision; Kutai Barat's file was saved from Excel with NIKs as numbers and is
quarantined. Every unit has a few bad rows, so a first run shows every path.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
import zipfile
from pathlib import Path

import duckdb

from orchestration.ingest.store import read_reference_csv, submitting_units
from orchestration.settings import SEEDS_DIR

# Approximate population per kabupaten/kota (BPS projections, mid-2020s, rounded).
POPULATION = {
    "64.01": 300_000,
    "64.02": 780_000,
    "64.03": 275_000,
    "64.07": 170_000,
    "64.08": 440_000,
    "64.09": 190_000,
    "64.11": 38_000,
    "64.71": 730_000,
    "64.72": 860_000,
    "64.74": 185_000,
}
MEAN_HOUSEHOLD_SIZE = 3.49
SCALES = {"bontang": 0.01, "kaltim": 1.0, "kaltim2x": 2.0, "kaltim10x": 10.0}  # 2x, 10x: benchmarks
SIGMA = 0.55  # spread of log per-capita expenditure

FIRST = (  # names, space-separated
    "Budi Siti Agus Dewi Ahmad Nur Rudi Sri Andi Rina Joko Wati Hendra Yuni Arif Lestari Muhammad "
    "Fitri Dedi Ayu"
)
LAST = (
    "Santoso Rahmawati Saputra Hidayat Wijaya Lestari Pratama Sari Kurniawan Daeng Ma’ruf Nugroho "
    "Setiawan Aji Baso Lahay"
)
PROGRAMS = [  # code, share of poor households, share of others, amount, per person
    ("PKH", 0.55, 0.02, 750_000, False),
    ("BPNT", 0.65, 0.04, 200_000, False),
    ("BLT", 0.25, 0.02, 300_000, False),
    ("UEP", 0.02, 0.001, 2_500_000, False),
    ("CSR_MODAL", 0.01, 0.001, 5_000_000, False),
    ("PIP", 0.0, 0.0, 450_000, True),
    ("PELATIHAN_KERJA", 0.0, 0.0, 1_000_000, True),
]

# Operators' habits, per unit
QUIRKS = {
    "64.74.03": {
        "encoding": "cp1252",
        "delimiter": ";",
        "crlf": True,
        "rupiah": "dotted",
        "dates": "dmy/",
    },
    "64.74.01": {"bom": True, "upper_headers": True},
    "64.11": {"xlsx": True},
    "64.09": {"zip": True},
    "64.74.02": {"revision": True},
    "64.07": {"numeric_ids": True},
}


def _u(salt: str, *cols: str) -> str:
    """A deterministic uniform draw in [0, 1) from the row's columns."""
    return f"(hash({', '.join(cols)}, '{salt}') % 1000003)::double / 1000003"


def _latest_p0(regency: str) -> float:
    rows = [
        r
        for r in read_reference_csv("bps_poverty_stats.csv")
        if r["kode_wilayah"] == regency and r["p0_persen"]
    ]
    return float(max(rows, key=lambda r: r["tahun"])["p0_persen"]) if rows else 6.0


def _poverty_line(regency: str, year: int) -> int:
    rows = [r for r in read_reference_csv("poverty_lines.csv") if r["regency_code"] == regency]
    eligible = [r for r in rows if int(r["year"]) <= year] or rows
    return int(max(eligible, key=lambda r: int(r["year"]))["poverty_line"])


def generate_unit(
    con: duckdb.DuckDBPyConnection, unit: str, households: int, period: str, seed: str
) -> None:
    """Temp tables keluarga, anggota, bantuan (as text, in the contract's columns) for one unit."""
    regency = unit[:5]
    year, month = (int(x) for x in period.split("-"))
    start = dt.date(year, month, 1)
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    z = _poverty_line(regency, year)
    mu = -SIGMA * statistics.NormalDist().inv_cdf(_latest_p0(regency) / 100)
    s = f"{unit}:{period}:{seed}"
    _households(con, unit, s, households, z, mu)
    _members(con, s, end)
    _receipts(con, s, start, end)
    _contract_tables(con, s, z, start)
    _spoil(con, households)


def _households(
    con: duckdb.DuckDBPyConnection, unit: str, s: str, households: int, z: int, mu: float
) -> None:
    """Temp table hh: each household's village, size, expenditure and No. KK."""
    con.execute(
        "create or replace temp table villages as select row_number() over (order by kode) - 1 as i, kode "
        "from read_csv($p, all_varchar=true) where level = 'desa_kelurahan' and starts_with(kode, $u)",
        {"p": str(SEEDS_DIR / "kaltim_regions.csv"), "u": unit + "."},
    )
    con.execute(f"""
        create or replace temp table hh as
        with base as (
            select range as h,
                   {_u(s + "v", "range")} as uv, {_u(s + "n", "range")} as un,
                   {_u(s + "e1", "range")} as e1, {_u(s + "e2", "range")} as e2,
                   {_u(s + "d", "range")} as ud
            from range({households})),
        drawn as (
            select h, (select kode from villages where i = floor(uv * (select count(*) from villages))) as village,
                   case when un < .12 then 1 when un < .30 then 2 when un < .52 then 3 when un < .74 then 4
                        when un < .88 then 5 when un < .95 then 6 else 7 end as size,
                   round({z} * exp({mu} + {SIGMA} * sqrt(-2 * ln(greatest(e1, 1e-9))) * cos(2 * pi() * e2)), -3)
                       as expenditure,
                   date '2005-01-01' + (ud * 7000)::int as issued
            from base)
        select *, expenditure < {z} as poor,
               replace(substr(village, 1, 8), '.', '') || strftime(issued, '%d%m%y')
               || lpad((row_number() over (partition by substr(village, 1, 8), issued order by h))::varchar, 4, '0')
                   as no_kk
        from drawn
    """)


def _members(con: duckdb.DuckDBPyConnection, s: str, end: dt.date) -> None:
    """Temp table mem2: the members of each household, their NIK, age and work."""
    con.execute(f"""
        create or replace temp table mem as
        with people as (
            select h, no_kk, village, poor, k,
                   case when k = 0 then {_u(s + "sx", "h")} < .15
                        when k = 1 then {_u(s + "sx", "h")} >= .15
                        else {_u(s + "sk", "h", "k")} < .5 end as female,
                   case when k <= 1 then 22 + floor({_u(s + "a", "h", "k")} * 50)
                        else floor({_u(s + "a", "h", "k")} * 24) end as age_years,
                   {_u(s + "w", "h", "k")} as uw, {_u(s + "i", "h", "k")} as ui
            from hh, unnest(range(size)) as t(k)),
        born as (
            select *, date '{end.isoformat()}' - (age_years * 365.25 + floor(ui * 360))::int as birth
            from people)
        select *,
               replace(substr(village, 1, 8), '.', '')
               || lpad((day(birth) + case when female then 40 else 0 end)::varchar, 2, '0')
               || strftime(birth, '%m%y')
               || lpad((row_number() over (partition by substr(village, 1, 8), birth, female order by h, k))::varchar,
                       4, '0') as nik,
               year(date '{end.isoformat()}') - year(birth)
               - case when strftime(birth, '%m%d') > '{end.strftime("%m%d")}' then 1 else 0 end as age
        from born
    """)
    con.execute("""
        create or replace temp table mem2 as
        select *,
            case when age < 15 then null
                 when age < 19 and uw < .8 then 'sekolah'
                 when age >= 65 and uw < .6 then 'lainnya'
                 when female and uw < .35 then 'mengurus_rumah_tangga'
                 when uw < (case when poor then .12 else .06 end) then 'menganggur'
                 when uw < .93 then 'bekerja'
                 else 'lainnya' end as status,
            substr('AAACCFGGGHIPQBBOS', 1 + floor(ui * 17)::int, 1) as industry
        from mem
    """)


def _receipts(con: duckdb.DuckDBPyConnection, s: str, start: dt.date, end: dt.date) -> None:
    """Temp table rec: the programs each household or member received in the period."""
    unions = []
    for code, share_poor, share_other, amount, per_person in PROGRAMS:
        if per_person:
            who = "status = 'sekolah' and poor" if code == "PIP" else "status = 'menganggur'"
            share = 0.6 if code == "PIP" else 0.05
            unions.append(
                f"select no_kk, nik, '{code}' as program, {amount} as amount, h, k from mem2 "
                f"where {who} and {_u(s + code, 'h', 'k')} < {share}"
            )
        else:
            unions.append(
                f"select no_kk, null as nik, '{code}' as program, {amount} as amount, h, -1 as k from hh "
                f"where {_u(s + code, 'h')} < case when poor then {share_poor} else {share_other} end"
            )
    unions.append(  # PBI-JK: every member of poor households
        f"select no_kk, nik, 'PBI_JK', 42000, h, k from mem2 where poor and {_u(s + 'pbi', 'h', 'k')} < .8"
    )
    con.execute(
        "create or replace temp table rec as select *, "
        f"date '{start.isoformat()}' + floor({_u(s + 'day', 'h', 'k', 'program')} * {end.day})::int as disbursed "
        "from (" + " union all ".join(unions) + ")"
    )


def _contract_tables(con: duckdb.DuckDBPyConnection, s: str, z: int, start: dt.date) -> None:
    """keluarga, anggota, bantuan: as text, in the contract's columns."""
    first, last = _list(FIRST), _list(LAST)
    name = f"{first}[1 + (hash(h, k, 'f') % {len(FIRST.split())})::int] || ' ' || {last}[1 + (hash(h, 'l') % {len(LAST.split())})::int]"
    con.execute(f"""
        create or replace temp table keluarga as
        select h, hh.no_kk, m.nik as nik_kepala, {name.replace("k,", "0,")} as nama_kepala, hh.village as kode_desa,
               size::varchar as jumlah_anggota, expenditure::bigint::varchar as pengeluaran_per_kapita,
               case when {_u(s + "dc", "hh.h")} < .7 then (1 + floor(least(expenditure / {z}, 2.49) * 4))::int::varchar end
                   as desil,
               case when {_u(s + "vf", "hh.h")} < .5 then strftime(date '{start.isoformat()}' - 30, '%Y-%m-%d') end
                   as tanggal_verifikasi
        from hh join mem2 m using (h) where m.k = 0
    """)
    con.execute(f"""
        create or replace temp table anggota as
        select h, k, nik, no_kk, {name} as nama, case when female then 'P' else 'L' end as jenis_kelamin,
               strftime(birth, '%Y-%m-%d') as tanggal_lahir, status as status_pekerjaan,
               case when status = 'bekerja' then industry end as lapangan_usaha
        from mem2
    """)
    con.execute("""
        create or replace temp table bantuan as
        select h, k, no_kk, nik, program as kode_program, strftime(disbursed, '%Y-%m-%d') as tanggal_salur,
               amount::varchar as nilai
        from rec
    """)


def _list(words: str) -> str:
    return "[" + ", ".join("'" + w.replace("'", "''") + "'" for w in words.split(" ")) + "]"


def _spoil(con: duckdb.DuckDBPyConnection, households: int) -> None:
    """A few typical operator mistakes, a handful per unit (well under the 10 % limit)."""
    step = max(households // 3, 200)
    for table, change, where in [
        ("keluarga", "kode_desa = '64.99.99.9999'", 3),  # DESA_UNKNOWN
        ("keluarga", "jumlah_anggota = ''", 5),  # REQUIRED_MISSING
        # DUPLICATE_KEY: household 9 repeats household 8's No. KK (both rejected, members ORPHAN)
        ("keluarga", "no_kk = (select no_kk from keluarga k2 where k2.h = keluarga.h - 1)", 9),
        ("anggota", "nik = substr(nik, 1, 6) || '99' || substr(nik, 9)", 11),  # NIK_INVALID
        ("anggota", "jenis_kelamin = 'X'", 13),  # CATEGORY_INVALID
        ("anggota", "tanggal_lahir = '31/02/1980'", 17),  # VALUE_UNPARSEABLE
        ("bantuan", "kode_program = 'BANSOS_LAIN'", 19),  # PROGRAM_UNKNOWN
        ("bantuan", "tanggal_salur = '2001-01-01'", 21),  # DATE_OUT_OF_PERIOD
    ]:
        head = " and k = 0" if table == "anggota" else ""  # a member: the head of the household
        con.execute(f"update {table} set {change} where h % {step} = {where}{head}")


def _write_csv(con, table: str, path: Path, columns: list[str], quirks: dict) -> None:
    header = [c.upper() if quirks.get("upper_headers") else c for c in columns]
    if quirks.get("upper_headers"):
        header = [f" {h} " if i % 2 else h for i, h in enumerate(header)]
    select = []
    for c in columns:
        expr = f'"{c}"'
        if quirks.get("rupiah") == "dotted" and c in ("pengeluaran_per_kapita", "nilai"):
            expr = f"'Rp ' || replace(format('{{:,}}', {c}::bigint), ',', '.')"
        if quirks.get("dates") == "dmy/" and c.startswith("tanggal_"):
            expr = f"strftime(try_strptime({c}, '%Y-%m-%d'), '%d/%m/%Y')"
        if quirks.get("numeric_ids") and c in ("nik", "nik_kepala"):
            expr = f"printf('%.5E', {c}::double)"
        select.append(f'{expr} as "{header[len(select)]}"')
    delimiter = quirks.get("delimiter", ",")
    tmp = path.with_suffix(".tmp")
    con.execute(
        f"copy (select {', '.join(select)} from {table} order by h) to '{tmp}' "
        f"(header, delimiter '{delimiter}', quote '\"', force_quote *)"
        if quirks.get("rupiah")
        else f"copy (select {', '.join(select)} from {table} order by h) to '{tmp}' (header, delimiter '{delimiter}')"
    )
    newline = "\r\n" if quirks.get("crlf") else "\n"
    encoding = quirks.get("encoding", "utf-8")
    with (
        open(tmp, encoding="utf-8") as src,
        open(path, "w", encoding=encoding, newline=newline) as dst,
    ):
        if quirks.get("bom"):
            dst.write("\ufeff")
        shutil.copyfileobj(src, dst, 4 * 1024 * 1024)
    tmp.unlink()


def _excel_value(column: str, value: str | None) -> object:
    """Dates as native Excel dates (a typo stays text); identifiers stay text."""
    if column.startswith("tanggal_") and value:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    if column in ("jumlah_anggota", "pengeluaran_per_kapita", "desil", "nilai") and value:
        return int(value)
    return value


def _write_xlsx(con, path: Path, columns: dict[str, list[str]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    for table, cols in columns.items():
        sheet = workbook.create_sheet(table)
        sheet.append(cols)
        for row in con.execute(f"select {', '.join(cols)} from {table} order by h").fetchall():
            sheet.append([_excel_value(c, v) for c, v in zip(cols, row, strict=True)])
    workbook.save(path)


COLUMNS = {
    "keluarga": [
        "no_kk",
        "nik_kepala",
        "nama_kepala",
        "kode_desa",
        "jumlah_anggota",
        "pengeluaran_per_kapita",
        "desil",
        "tanggal_verifikasi",
    ],
    "anggota": [
        "nik",
        "no_kk",
        "nama",
        "jenis_kelamin",
        "tanggal_lahir",
        "status_pekerjaan",
        "lapangan_usaha",
    ],
    "bantuan": ["no_kk", "nik", "kode_program", "tanggal_salur", "nilai"],
}


def households_per_unit(scale: str) -> dict[str, int]:
    factor = SCALES[scale]
    regions = read_reference_csv("kaltim_regions.csv")
    villages = [r["kode"] for r in regions if r["level"] == "desa_kelurahan"]
    result = {}
    for unit in submitting_units():
        regency = unit[:5]
        share = 1.0
        if len(unit) > 5:  # a kecamatan: its share of the regency's villages
            share = sum(v.startswith(unit + ".") for v in villages) / sum(
                v.startswith(regency + ".") for v in villages
            )
        result[unit] = max(40, round(POPULATION[regency] * share * factor / MEAN_HOUSEHOLD_SIZE))
    return result


def default_period(today: dt.date | None = None) -> str:
    today = today or dt.date.today()
    last_month = today.replace(day=1) - dt.timedelta(days=1)
    return last_month.strftime("%Y-%m")


def write_demo(landing: Path, scale: str = "bontang", period: str | None = None) -> list[Path]:
    """Write one submission per registered unit (two for the unit that sends a revision)."""
    period = period or default_period()
    landing.mkdir(parents=True, exist_ok=True)
    year, month = (int(x) for x in period.split("-"))
    sent = dt.datetime(
        year, month, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))
    ) + dt.timedelta(days=35)
    written = []
    with duckdb.connect() as con:
        units = submitting_units()
        for unit, households in households_per_unit(scale).items():
            quirks = QUIRKS.get(unit, {})
            revisions = (
                [("r1", sent - dt.timedelta(days=2)), ("r2", sent)]
                if quirks.get("revision")
                else [("r1", sent)]
            )
            for revision, sent_at in revisions:
                generate_unit(con, unit, households, period, seed=revision)
                name = f"{unit}_{period}_{revision}"
                folder = landing / (f".{name}" if quirks.get("zip") else name)
                inner = folder / name if quirks.get("zip") else folder
                inner.mkdir(parents=True, exist_ok=True)
                if quirks.get("xlsx"):
                    _write_xlsx(con, inner / f"register_{unit}_{period}.xlsx", COLUMNS)
                else:
                    for table, cols in COLUMNS.items():
                        _write_csv(con, table, inner / f"{table}.csv", cols, quirks)
                manifest = {
                    "kode_wilayah": unit,
                    "periode": period,
                    "dikirim_pada": sent_at.isoformat(),
                    "petugas": f"Operator {units[unit]}",
                    "catatan": f"demo data, scale {scale}, revision {revision}",
                }
                # upload tools write the manifest last
                (inner / "manifest.json").write_text(json.dumps(manifest, indent=2))
                if quirks.get("zip"):
                    target = landing / f"{name}.zip"
                    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                        for path in sorted(inner.rglob("*")):
                            archive.write(path, Path(name) / path.relative_to(inner))
                    shutil.rmtree(folder)
                    written.append(target)
                else:
                    written.append(folder)
    return written
