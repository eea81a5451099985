"""Each row rule of the submission contract rejects exactly the offending row and column."""

from __future__ import annotations

import pytest

from tests.submissions import kk, nik, register, write_submission

# (table, row index, column, bad value, expected reason code)
CASES = [
    ("keluarga", 0, "nama_kepala", "", "REQUIRED_MISSING"),
    ("keluarga", 0, "kode_desa", "  ", "REQUIRED_MISSING"),
    ("keluarga", 0, "pengeluaran_per_kapita", "1.250.000,50", "VALUE_UNPARSEABLE"),
    ("keluarga", 0, "pengeluaran_per_kapita", "satu juta", "VALUE_UNPARSEABLE"),
    ("keluarga", 0, "jumlah_anggota", "dua", "VALUE_UNPARSEABLE"),
    ("keluarga", 0, "tanggal_verifikasi", "03/15/2025", "VALUE_UNPARSEABLE"),
    ("keluarga", 0, "jumlah_anggota", "31", "VALUE_OUT_OF_RANGE"),
    ("keluarga", 0, "jumlah_anggota", "0", "VALUE_OUT_OF_RANGE"),
    ("keluarga", 0, "desil", "11", "VALUE_OUT_OF_RANGE"),
    ("keluarga", 0, "pengeluaran_per_kapita", "-5000", "VALUE_OUT_OF_RANGE"),
    ("keluarga", 0, "nik_kepala", "6474023205901234", "NIK_INVALID"),  # day 32
    ("keluarga", 0, "nik_kepala", "6474027213901234", "NIK_INVALID"),  # day 72
    ("keluarga", 0, "nik_kepala", "6474023102901234", "NIK_INVALID"),  # 31 February
    ("anggota", 0, "nik", "647402150590001", "NIK_INVALID"),  # 15 digits
    ("keluarga", 0, "no_kk", "64740201012000A1", "KK_INVALID"),
    ("anggota", 0, "nik", "6.47402E+15", "ID_NOT_TEXT"),
    ("keluarga", 0, "no_kk", "6,47402E+15", "ID_NOT_TEXT"),
    ("keluarga", 0, "kode_desa", "64.74.02.9999", "DESA_UNKNOWN"),
    ("keluarga", 0, "kode_desa", "Tanjung Laut", "DESA_UNKNOWN"),
    ("keluarga", 0, "kode_desa", "64.74.01.1001", "DESA_OUTSIDE_WILAYAH"),
    ("anggota", 0, "jenis_kelamin", "X", "CATEGORY_INVALID"),
    ("anggota", 0, "status_pekerjaan", "pensiun", "CATEGORY_INVALID"),
    ("anggota", 0, "lapangan_usaha", "Z", "CATEGORY_INVALID"),
    ("anggota", 0, "status_pekerjaan", "", "REQUIRED_MISSING"),  # adult without status
    ("anggota", 0, "lapangan_usaha", "", "REQUIRED_MISSING"),  # bekerja without section
    ("anggota", 1, "lapangan_usaha", "G", "NOT_APPLICABLE"),  # not working, section given
    ("bantuan", 0, "kode_program", "BANSOS_LAIN", "PROGRAM_UNKNOWN"),
    ("bantuan", 0, "tanggal_salur", "2025-04-01", "DATE_OUT_OF_PERIOD"),
    ("bantuan", 0, "tanggal_salur", "28/02/2025", "DATE_OUT_OF_PERIOD"),
    ("anggota", 0, "tanggal_lahir", "2025-04-02", "DATE_OUT_OF_PERIOD"),
    ("keluarga", 0, "tanggal_verifikasi", "2025-04-04", "DATE_OUT_OF_PERIOD"),  # after dikirim_pada
    ("bantuan", 0, "nik", "12345", "NIK_INVALID"),  # optional, but when given it must be valid
    ("bantuan", 0, "nilai", "Rp -", "VALUE_UNPARSEABLE"),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "reason"), CASES)
def test_rule_rejects_the_offending_row_with_its_reason(
    settings, ingest, query, table, row, column, value, reason
):
    data = register()
    data[table][row][column] = value
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    assert outcome.status == "accepted"
    rejects = query(
        "select table_name, line, column_name, reason_code from raw.rejects where reason_code <> 'ORPHAN'"
    )
    assert rejects == [(table, row + 2, column, reason)]  # line 1 is the header


def test_each_rejected_cell_once_and_one_accepted_row_per_key(settings, ingest, query):
    """What the warehouse relies on without testing it each night (the staging views of the
    rows: dbt_project/models/staging/_raw__models.yml), with faults that meet in one row."""
    data = register(households=60)
    data["keluarga"][1]["no_kk"] = data["keluarga"][0]["no_kk"]  # both rejected, members ORPHAN
    data["keluarga"][2]["desil"] = "11"  # two faults in one row
    data["keluarga"][2]["pengeluaran_per_kapita"] = "-5"
    data["anggota"][7]["nik"] = data["anggota"][6]["nik"]  # a NIK twice
    data["anggota"][9]["no_kk"] = "12345"  # two faults in one row
    data["anggota"][9]["tanggal_lahir"] = "31/02/1990"
    data["bantuan"][5]["nilai"] = "banyak"
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    assert outcome.status == "accepted", outcome.detail
    [(cells, distinct)] = query(
        "select count(*), count(distinct (submission_id, table_name, line, column_name)) "
        "from raw.rejects"
    )
    assert cells == distinct > 8
    for table, key in (("households", "household_key"), ("members", "person_key"),
                       ("receipts", "line")):  # fmt: skip
        [(rows, keys)] = query(
            f"select count(*), count(distinct (submission_id, {key})) from raw.{table}"
        )
        assert rows == keys > 0, table
    assert query("select count(*) from raw.rejects where reason_code is null") == [(0,)]


def test_child_under_15_must_not_have_employment_status(settings, ingest, query):
    data = register()
    child = nik("64.74.02", 99, birth="010115")
    data["keluarga"][0]["jumlah_anggota"] = "3"
    data["anggota"].append(
        {"nik": child, "no_kk": kk("64.74.02", 1), "nama": "Anak", "jenis_kelamin": "L",
         "tanggal_lahir": "2015-01-01", "status_pekerjaan": "sekolah", "lapangan_usaha": ""}
    )  # fmt: skip
    write_submission(settings.landing, "s", data)
    ingest()
    assert query("select line, column_name, reason_code from raw.rejects") == [
        (len(data["anggota"]) + 1, "status_pekerjaan", "NOT_APPLICABLE")
    ]


def test_15th_birthday_on_the_periods_last_day_requires_a_status(settings, ingest, query):
    data = register()
    teen = nik("64.74.02", 98, birth="310310")
    data["anggota"].append(
        {"nik": teen, "no_kk": kk("64.74.02", 1), "nama": "Remaja", "jenis_kelamin": "L",
         "tanggal_lahir": "31/03/2010", "status_pekerjaan": "", "lapangan_usaha": ""}
    )  # fmt: skip
    write_submission(settings.landing, "s", data)
    ingest()
    assert query("select column_name, reason_code from raw.rejects") == [
        ("status_pekerjaan", "REQUIRED_MISSING")
    ]


def test_duplicate_household_key_rejects_every_copy_and_orphans_its_rows(settings, ingest, query):
    data = register()
    data["keluarga"][1]["no_kk"] = data["keluarga"][0]["no_kk"]
    write_submission(settings.landing, "s", data)
    ingest()
    rows = query("select table_name, line, column_name, reason_code from raw.rejects order by 1, 2")
    assert ("keluarga", 2, "no_kk", "DUPLICATE_KEY") in rows
    assert ("keluarga", 3, "no_kk", "DUPLICATE_KEY") in rows
    # both households' members and receipts are orphans: 2 members each + 1 receipt each
    orphans = [r for r in rows if r[3] == "ORPHAN"]
    assert sorted((t, line) for t, line, _, _ in orphans) == [
        ("anggota", 2), ("anggota", 3), ("anggota", 4), ("anggota", 5), ("bantuan", 2), ("bantuan", 3),
    ]  # fmt: skip
    assert query("select count(*) from raw.households") == [(18,)]


def test_duplicate_person_rejects_every_copy(settings, ingest, query):
    data = register()
    data["anggota"][3]["nik"] = data["anggota"][0]["nik"]
    write_submission(settings.landing, "s", data)
    ingest()
    assert query("select line, reason_code from raw.rejects order by line") == [
        (2, "DUPLICATE_KEY"),
        (5, "DUPLICATE_KEY"),
    ]


def test_member_of_an_unknown_household_is_an_orphan(settings, ingest, query):
    data = register()
    data["anggota"][0]["no_kk"] = kk("64.74.02", 777)
    write_submission(settings.landing, "s", data)
    ingest()
    assert query("select table_name, line, column_name, reason_code from raw.rejects") == [
        ("anggota", 2, "no_kk", "ORPHAN")
    ]


def test_member_of_a_rejected_household_is_an_orphan(settings, ingest, query):
    data = register()
    data["keluarga"][0]["kode_desa"] = "64.74.02.9999"
    write_submission(settings.landing, "s", data)
    ingest()
    rows = query("select table_name, line, reason_code from raw.rejects order by 1, 2")
    assert rows == [
        ("anggota", 2, "ORPHAN"), ("anggota", 3, "ORPHAN"), ("bantuan", 2, "ORPHAN"),
        ("keluarga", 2, "DESA_UNKNOWN"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("written", "rupiah"),
    [("Rp 1.250.000", 1250000), ("1,250,000", 1250000), ("1250000", 1250000),
     ("1.250.000,00", 1250000), ("Rp1.250.000,00", 1250000), ("1250000.00", 1250000)],
)  # fmt: skip
def test_rupiah_amounts_in_every_written_form(settings, ingest, query, written, rupiah):
    data = register()
    data["keluarga"][0]["pengeluaran_per_kapita"] = written
    write_submission(settings.landing, "s", data)
    ingest()
    assert query("select expenditure_per_capita from raw.households where line = 2") == [(rupiah,)]


@pytest.mark.parametrize("written", ["2025-03-05", "05/03/2025", "05-03-2025", "5/3/2025"])
def test_dates_are_day_first_in_every_written_form(settings, ingest, query, written):
    import datetime as dt

    data = register()
    data["keluarga"][0]["tanggal_verifikasi"] = written
    write_submission(settings.landing, "s", data)
    ingest()
    assert query("select verified_on from raw.households where line = 2") == [
        (dt.date(2025, 3, 5),)
    ]


def test_region_codes_without_dots_are_normalised(settings, ingest, query):
    data = register()
    data["keluarga"][0]["kode_desa"] = "6474021001"
    write_submission(settings.landing, "s", data, {"kode_wilayah": "647402", "periode": "2025-03",
                                                   "dikirim_pada": "2025-04-03T09:12:00+08:00"})  # fmt: skip
    [outcome] = ingest()
    assert outcome.unit_code == "64.74.02"
    assert query("select village_code from raw.households where line = 2") == [("64.74.02.1001",)]


def test_nik_of_a_woman_encodes_day_plus_40(settings, ingest, query):
    write_submission(settings.landing, "s", register())
    ingest()
    assert query("select nik_sex, count(*) from raw.members group by 1 order by 1") == [
        ("L", 20),
        ("P", 20),
    ]


def test_a_nik_is_valid_exactly_when_its_birth_date_exists():
    """Every day (a woman's: + 40), month and two-digit year against Python's own calendar."""
    import datetime as dt

    import duckdb
    import pyarrow as pa

    from orchestration.ingest.validate import install_macros

    def exists(day: int, month: int, year: int) -> bool:
        if not (1 <= day <= 31 or 41 <= day <= 71):
            return False
        try:
            dt.datetime.strptime(f"{day % 40:02d}{month:02d}{year:02d}", "%d%m%y")
        except ValueError:
            return False
        return True

    niks = {
        f"647402{d:02d}{m:02d}{y:02d}0001": exists(d, m, y)
        for d in range(80)
        for m in [*range(14), 99]
        for y in range(100)
    }
    assert sum(niks.values()) == 2 * (366 * 25 + 365 * 75)  # leap exactly when yy % 4 == 0
    con = duckdb.connect()
    install_macros(con)
    con.register("expected", pa.table({"nik": list(niks), "valid": list(niks.values())}))
    wrong = con.execute(
        "select nik, valid from expected "  # the two steps _check_table takes, as one expression
        "where coalesce(sd_ddmmyy_ok(sd_nik_ddmmyy(nik)), false) is distinct from valid limit 5"
    ).fetchall()
    assert wrong == []


def test_blank_and_trim_treat_every_character_as_trim_does():
    """``sd_blank`` skips trim() for values that cannot need it: same result as trim() itself."""
    import duckdb

    from orchestration.ingest.validate import install_macros

    con = duckdb.connect()
    install_macros(con)
    con.execute(
        """
        create table cases as
        with chars as (select chr(i::integer) as ch from range(1, 13000) t(i)
                       where i not between 55296 and 57343)  -- (surrogates are no characters)
        select ch || 'x' || ch as v from chars
        union all select 'x' || ch from chars
        union all select ch || 'x' from chars
        union all select ch from chars
        union all select unnest([null, '', ' ', '  x  ', 'x', 'Rp 1.000', '6474021505900001'])
        """
    )
    wrong = con.execute(
        "select v from cases where sd_blank(v) is distinct from nullif(trim(v), '') limit 5"
    ).fetchall()
    assert wrong == []
    assert con.execute("select count(*) from cases where trim(v) <> v").fetchone()[0] > 20
