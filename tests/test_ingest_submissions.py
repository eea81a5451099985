"""Whole submissions: the formats operators send, quarantine, archive, supersession, privacy."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import stat
from pathlib import Path

import duckdb
import pytest

from orchestration.ingest.contract import REASONS
from orchestration.ingest.pipeline import Ingestor
from orchestration.settings import Settings
from tests.conftest import NOW, TEST_KEY
from tests.submissions import COLUMNS, manifest, register, write_submission


def counts(query) -> tuple:
    return tuple(
        query(f"select count(*) from raw.{t}")[0][0] for t in ("households", "members", "receipts")
    )


# --- formats operators really send -----------------------------------------------------------


def test_windows_1252_with_semicolons_crlf_and_curly_quotes_is_read(settings, ingest, query):
    data = register()
    data["keluarga"][0]["nama_kepala"] = "Ma’ruf “Daeng” Ñoman"
    data["keluarga"][1]["pengeluaran_per_kapita"] = "Rp 1.250.000"
    write_submission(settings.landing, "s", data, encoding="cp1252", delimiter=";", crlf=True)
    [outcome] = ingest()
    assert outcome.status == "accepted", outcome.detail
    assert outcome.counts["keluarga"]["encoding"] == "windows-1252"
    assert outcome.counts["keluarga"]["delimiter"] == ";"
    assert counts(query) == (20, 40, 20)
    assert query("select expenditure_per_capita from raw.households where line = 3") == [(1250000,)]


def test_a_windows_1252_byte_only_on_the_last_line_is_found_and_the_file_read_as_such(
    settings, ingest, query
):
    """DuckDB checks every byte as UTF-8 while it reads; one byte that is not, far into the
    file and inside quotes, makes it read the file again as Windows-1252."""
    data = register(households=2000)
    data["keluarga"][-1]["nama_kepala"] = "Ma’ruf, “Daeng”"  # (quoted: it holds a comma)
    write_submission(settings.landing, "s", data, encoding="cp1252")
    assert b"\x92" in (settings.landing / "s" / "keluarga.csv").read_bytes()[-200:]
    [outcome] = ingest()
    assert outcome.status == "accepted", outcome.detail
    assert outcome.counts["keluarga"]["encoding"] == "windows-1252"
    assert outcome.counts["anggota"]["encoding"] == "utf-8"
    assert counts(query) == (2000, 4000, 2000)


def test_bom_and_headers_in_any_case_with_spaces_are_read(settings, ingest, query):
    headers = {t: [f"  {c.upper()} " for c in cols] for t, cols in COLUMNS.items()}
    write_submission(settings.landing, "s", register(), bom=True, headers=headers)
    [outcome] = ingest()
    assert outcome.status == "accepted", outcome.detail
    assert counts(query) == (20, 40, 20)


def test_xlsx_with_native_dates_is_read(settings, ingest, query):
    write_submission(settings.landing, "s", register(), fmt="xlsx")
    [outcome] = ingest()
    assert outcome.status == "accepted", outcome.detail
    assert counts(query) == (20, 40, 20)
    assert query("select distinct birth_date from raw.members order by 1") == [
        (dt.date(1990, 5, 15),), (dt.date(1992, 5, 15),)
    ]  # fmt: skip


def test_xlsx_numeric_nik_cell_is_rejected_as_not_text_never_repaired(settings, ingest, query):
    write_submission(
        settings.landing, "s", register(), fmt="xlsx", numeric_cells={"anggota": {(0, "nik")}}
    )
    [outcome] = ingest()
    assert outcome.status == "accepted"
    assert query("select table_name, line, column_name, reason_code from raw.rejects") == [
        ("anggota", 2, "nik", "ID_NOT_TEXT")
    ]
    report = json.loads(Path(outcome.report_path).read_text())
    [entry] = report["rejects"]
    assert entry["value"].startswith("6.47") and "*" in entry["value"]  # as Excel shows it, masked
    assert "15 digit" in entry["message_id"] and "15 digits" in entry["message_en"]


@pytest.mark.parametrize("layout", ["root", "top-folder"])
def test_zip_submission_is_read_at_root_or_in_one_top_folder(settings, ingest, query, layout):
    write_submission(settings.landing, "s", register(), as_zip=layout)
    [outcome] = ingest()
    assert outcome.status == "accepted", outcome.detail
    assert counts(query) == (20, 40, 20)
    assert not list(settings.landing.iterdir())


def test_bantuan_with_header_and_no_rows_is_fine(settings, ingest, query):
    data = register()
    data["bantuan"] = []
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    assert outcome.status == "accepted"
    assert counts(query) == (20, 40, 0)


# --- quarantine ------------------------------------------------------------------------------


def _quarantined(settings, ingest, name="s"):
    [outcome] = ingest()
    assert outcome.status == "quarantined"
    return outcome


def test_zip_without_manifest_is_quarantined(settings, ingest):
    write_submission(settings.landing, "s", register(), as_zip="root", omit=("manifest.json",))
    assert _quarantined(settings, ingest).reason_code == "MANIFEST_MISSING"


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        json.dumps({"kode_wilayah": "64.74.02", "periode": "2025-03"}),
        json.dumps(manifest(sent="2025-04-03T09:12:00")),  # no offset
        json.dumps(manifest(sent="kemarin")),
    ],
)
def test_invalid_manifest_is_quarantined(settings, ingest, body):
    write_submission(settings.landing, "s", register(), body)
    assert _quarantined(settings, ingest).reason_code == "MANIFEST_INVALID"


def test_unregistered_unit_is_quarantined(settings, ingest):
    write_submission(settings.landing, "s", register(), manifest(unit="64.05"))
    assert _quarantined(settings, ingest).reason_code == "UNIT_NOT_REGISTERED"


@pytest.mark.parametrize("period", ["2025-13", "2025-3", "Maret 2025", "2025-05"])
def test_malformed_or_future_period_is_quarantined(settings, ingest, period):
    write_submission(settings.landing, "s", register(), manifest(period=period))
    outcome = _quarantined(settings, ingest)  # NOW is 2025-04-10: May 2025 is in the future
    assert outcome.reason_code == "PERIOD_INVALID"


def test_missing_file_is_quarantined(settings, ingest):
    write_submission(settings.landing, "s", register(), omit=("bantuan.csv",))
    outcome = _quarantined(settings, ingest)
    assert outcome.reason_code == "FILE_MISSING" and "bantuan.csv" in outcome.detail


def test_missing_column_is_quarantined(settings, ingest):
    headers = {
        "keluarga": [
            c if c != "pengeluaran_per_kapita" else "pengeluaran" for c in COLUMNS["keluarga"]
        ]
    }
    write_submission(settings.landing, "s", register(), headers=headers)
    outcome = _quarantined(settings, ingest)
    assert outcome.reason_code == "COLUMN_MISSING" and "pengeluaran_per_kapita" in outcome.detail


def test_binary_file_is_quarantined(settings, ingest):
    folder = write_submission(settings.landing, "s", register())
    (folder / "anggota.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(200))
    outcome = _quarantined(settings, ingest)
    assert outcome.reason_code == "FILE_UNREADABLE" and "anggota.csv" in outcome.detail


def test_file_in_neither_utf8_nor_windows_1252_is_quarantined(settings, ingest):
    folder = write_submission(settings.landing, "s", register())
    text = (folder / "keluarga.csv").read_bytes()
    (folder / "keluarga.csv").write_bytes(text.replace(b"Kepala 1,", b"Kepala \x81\x8d,", 1))
    outcome = _quarantined(settings, ingest)
    assert outcome.reason_code == "FILE_UNREADABLE"
    assert "neither UTF-8 nor Windows-1252" in outcome.detail


def test_empty_keluarga_is_quarantined(settings, ingest):
    write_submission(settings.landing, "s", {"keluarga": [], "anggota": [], "bantuan": []})
    assert _quarantined(settings, ingest).reason_code == "KELUARGA_EMPTY"


@pytest.mark.parametrize(("table", "bad", "quarantined"), [("keluarga", 2, False), ("keluarga", 3, True),
                                                           ("anggota", 4, False), ("anggota", 5, True)])  # fmt: skip
def test_more_than_ten_percent_rejected_quarantines_the_whole_submission(
    settings, ingest, query, table, bad, quarantined
):
    data = register()  # 20 households: 2 bad = 10 % (kept), 3 bad = 15 % (quarantined)
    if table == "keluarga":
        for row in data["keluarga"][:bad]:
            row["desil"] = "99"
    else:  # 40 members: 4 = 10 %, 5 = 12.5 %; pick rows of different households
        for row in data["anggota"][1 : 2 * bad : 2]:
            row["jenis_kelamin"] = "W"
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    assert (outcome.status == "quarantined") is quarantined
    if quarantined:
        assert outcome.reason_code == "TOO_MANY_REJECTS"
        assert counts(query) == (0, 0, 0)


def test_the_report_lists_every_rejected_cell_in_file_order_masked_and_in_both_languages(
    settings, ingest, query
):
    data = register()
    data["bantuan"][0]["nik"] = "12345"  # personal, short: all stars
    data["anggota"][0]["nik"] = "647402150590001"  # personal: first 4 and last 2 kept
    data["keluarga"][0]["jumlah_anggota"] = "dua"  # not personal: as sent
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    report = json.loads(Path(outcome.report_path).read_text(encoding="utf-8"))
    rejects = report["rejects"]
    # every rejected cell of the register, root causes first, in file order, and nothing else
    assert [(r["table"], r["line"], r["column"], r["reason_code"]) for r in rejects] == query(
        "select table_name, line, column_name, reason_code from raw.rejects order by "
        "case table_name when 'keluarga' then 1 when 'anggota' then 2 else 3 end, "
        "reason_code = 'ORPHAN', line, column_name"
    )
    assert sum(report["rejects_by_reason"].values()) == len(rejects)
    assert len({(r["table"], r["line"]) for r in rejects}) == outcome.rows_rejected
    values = {(r["table"], r["column"]): r["value"] for r in rejects}
    assert re.fullmatch(r"\*{5} #[0-9a-f]{4}", values[("bantuan", "nik")])
    assert re.fullmatch(r"6474\*{9}01 #[0-9a-f]{4}", values[("anggota", "nik")])
    assert values[("keluarga", "jumlah_anggota")] == "dua"
    for entry in rejects:
        assert (entry["message_id"], entry["message_en"], entry["fix_id"], entry["fix_en"]) == (
            REASONS[entry["reason_code"]]
        )
    page = Path(outcome.report_path).with_suffix(".html").read_text(encoding="utf-8")
    assert "6474*********01" in page and "647402150590001" not in page


def test_the_report_puts_root_causes_first_tells_masked_values_apart_and_speaks_wita(
    settings, ingest, query
):
    data = register()
    data["keluarga"][2]["kode_desa"] = "64.74.02.9999"  # line 4: its members become orphans
    data["anggota"][0]["nik"] = data["anggota"][1]["nik"] = "6474021505900199"  # same, twice
    data["anggota"][2]["nik"] = data["anggota"][3]["nik"] = "6474021505900299"  # another pair
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    rejects = json.loads(Path(outcome.report_path).read_text(encoding="utf-8"))["rejects"]
    first_orphan = next(i for i, r in enumerate(rejects) if r["reason_code"] == "ORPHAN")
    assert rejects[0] == {
        **rejects[0],
        "table": "keluarga",
        "line": 4,
        "reason_code": "DESA_UNKNOWN",
    }
    assert all(r["reason_code"] != "ORPHAN" for r in rejects[:first_orphan])
    orphans = [r for r in rejects if r["reason_code"] == "ORPHAN"]
    assert {(r["table"], r["caused_by_keluarga_line"]) for r in orphans} == {
        ("anggota", 4), ("bantuan", 4)
    }  # fmt: skip
    nik = {r["line"]: r["value"] for r in rejects if r["column"] == "nik"}
    assert nik[2] == nik[3] != nik[4] == nik[5]  # same value, same tag; another, another tag
    assert nik[2][:-4] == nik[4][:-4]  # (the masks alone look alike)
    # the tag is the start of the pseudonym the warehouse keeps for the value: one HMAC for both
    pseudonym = hmac.new(TEST_KEY.encode(), b"6474021505900199", hashlib.sha256).hexdigest()[:32]
    assert nik[2].endswith("#" + pseudonym[:4])
    assert query(
        "select distinct value from raw.rejects where table_name = 'anggota' and line in (2, 3) "
        "and column_name = 'nik'"
    ) == [(pseudonym,)]
    page = Path(outcome.report_path).with_suffix(".html").read_text(encoding="utf-8")
    assert "Caused by keluarga line 4" in page
    assert "2025-04-03 09:12 WITA" in page  # dikirim_pada as sent, in WITA
    assert "2025-04-10 11:00 WITA" in page  # received at NOW (03:00 UTC)
    assert outcome.submission_id[:12] in page and outcome.submission_id not in page


def test_a_quarantined_kabupatens_report_stays_small_grouped_with_the_full_list_as_csv(
    settings, ingest
):
    data = register(households=400)
    for row in data["keluarga"][:200] + data["keluarga"][201:]:
        row["kode_desa"] = "64.74.02.9999"  # all households but one: a systematic fault
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    assert outcome.status == "quarantined"
    report_json = Path(outcome.report_path)
    report = json.loads(report_json.read_text(encoding="utf-8"))
    assert report["rejects_total"] == 399 + 798 + 399  # households, their members and receipts
    groups = {(g["table"], g["column"], g["reason_code"]): g for g in report["reject_groups"]}
    assert list(groups) == [
        ("keluarga", "kode_desa", "DESA_UNKNOWN"),
        ("anggota", "no_kk", "ORPHAN"),
        ("bantuan", "no_kk", "ORPHAN"),
    ]  # root causes first
    assert groups[("keluarga", "kode_desa", "DESA_UNKNOWN")]["ranges"] == ["2–201", "203–401"]
    assert groups[("anggota", "no_kk", "ORPHAN")]["rows"] == 798
    listing = report_json.with_name(report["rejects_file"])
    assert len(listing.read_text(encoding="utf-8").splitlines()) == 1 + 1596
    page = report_json.with_suffix(".html").read_text(encoding="utf-8")
    assert "2–201, 203–401" in page and report["rejects_file"] in page
    for path in (report_json, report_json.with_suffix(".html")):
        assert path.stat().st_size < 300_000, path  # small, whatever the size of the register
    [kept] = settings.quarantine.iterdir()
    assert (kept / "laporan_validasi_validation_report.rejects.csv").exists()


def test_quarantined_files_stay_untouched_beside_a_bilingual_report(settings, ingest):
    folder = write_submission(settings.landing, "s", register(), manifest(unit="64.05"))
    originals = {p.name: p.read_bytes() for p in folder.iterdir()}
    outcome = _quarantined(settings, ingest)
    [target] = list(settings.quarantine.iterdir())
    assert {p.name: p.read_bytes() for p in (target / "s").iterdir()} == originals
    report = json.loads((target / "laporan_validasi_validation_report.json").read_text())
    assert report["status"] == "quarantined" and report["reason_code"] == "UNIT_NOT_REGISTERED"
    assert report["reason_id"].startswith("kode_wilayah bukan") and report["reason_en"].startswith(
        "kode_wilayah is not"
    )
    html = (target / "laporan_validasi_validation_report.html").read_text()
    assert "DIKARANTINA" in html and "QUARANTINED" in html
    assert outcome.submission_id[:12] in html  # the short id operators quote
    # the report beside the files says what the one in reports/ says, naming the files beside it
    kept = json.loads((target / "laporan_validasi_validation_report.json").read_text())
    original = json.loads(Path(outcome.report_path).read_text())
    assert {k: v for k, v in kept.items() if k != "rejects_file"} == {
        k: v for k, v in original.items() if k != "rejects_file"
    }


# --- archive, idempotency, supersession ------------------------------------------------------


def test_every_file_is_archived_byte_for_byte_by_sha256(settings, ingest):
    folder = write_submission(settings.landing, "s", register())
    originals = [p.read_bytes() for p in sorted(folder.iterdir())]
    ingest()
    for content in originals:
        sha = hashlib.sha256(content).hexdigest()
        assert (settings.archive / "objects" / sha[:2] / sha).read_bytes() == content


def test_receiving_the_same_submission_twice_changes_nothing(settings, ingest, query):
    write_submission(settings.landing, "s", register())
    [first] = ingest()
    before = (
        counts(query),
        query("select * from raw.submissions"),
        query("select count(*) from raw.rejects"),
    )
    objects = sorted(p.name for p in (settings.archive / "objects").rglob("*") if p.is_file())
    write_submission(settings.landing, "s-again", register())
    [second] = ingest()
    assert second.status == "duplicate" and second.submission_id == first.submission_id
    after = (
        counts(query),
        query("select * from raw.submissions"),
        query("select count(*) from raw.rejects"),
    )
    assert after == before
    assert (
        sorted(p.name for p in (settings.archive / "objects").rglob("*") if p.is_file()) == objects
    )
    assert not list(settings.landing.iterdir())


def test_newer_dikirim_pada_supersedes_the_accepted_submission(settings, ingest, query):
    write_submission(
        settings.landing, "old", register(households=20), manifest(sent="2025-04-03T09:00:00+08:00")
    )
    [old] = ingest()
    write_submission(
        settings.landing, "new", register(households=15), manifest(sent="2025-04-05T09:00:00+08:00")
    )
    [new] = ingest()
    assert new.status == "accepted"
    rows = dict(query("select submission_id, status from raw.submissions"))
    assert rows == {old.submission_id: "superseded", new.submission_id: "accepted"}
    assert query(
        "select superseded_by from raw.submissions where submission_id = ?", [old.submission_id]
    ) == [(new.submission_id,)]


def test_older_submission_arriving_later_is_recorded_as_superseded_and_changes_nothing(
    settings, ingest, query
):
    write_submission(
        settings.landing, "new", register(households=15), manifest(sent="2025-04-05T09:00:00+08:00")
    )
    [new] = ingest()
    write_submission(
        settings.landing, "old", register(households=20), manifest(sent="2025-04-03T09:00:00+08:00")
    )
    [old] = ingest()
    assert old.status == "superseded"
    assert dict(query("select submission_id, status from raw.submissions")) == {
        new.submission_id: "accepted", old.submission_id: "superseded"
    }  # fmt: skip
    report = json.loads(Path(old.report_path).read_text())
    assert (
        report["status_id"].startswith("DIGANTIKAN")
        and report["superseded_by"] == new.submission_id
    )


def test_two_submissions_at_a_time_give_the_register_one_at_a_time_gives(tmp_path, monkeypatch):
    """Revisions of one unit and period in one batch, with the same outcome as serial ingestion:
    arriving later with an older or equal dikirim_pada is superseded; byte-identical copies
    are duplicates; a quarantined one changes nothing."""
    monkeypatch.setenv("SATUDATA_PSEUDONYM_KEY", TEST_KEY)
    sent = {d: f"2025-04-0{d}T09:00:00+08:00" for d in (3, 4, 5)}
    batch = [  # in arrival order
        ("a1", register(households=20), manifest(sent=sent[3])),
        ("b1", register("64.74.01"), manifest("64.74.01")),
        ("a3", register(households=18), manifest(sent=sent[5])),
        ("a2", register(households=19), manifest(sent=sent[4])),
        ("b1-again", register("64.74.01"), manifest("64.74.01")),
        ("a4", register(households=17), manifest(sent=sent[5])),
        ("q", register("64.74.03"), manifest(unit="64.05")),
        ("b0", register("64.74.01"), manifest("64.74.01", period="2025-02")),
    ]
    registers = {}
    for workers in (1, 2):
        settings = Settings(tmp_path / f"workers{workers}", ingest_workers=workers).ensure()
        for i, (name, data, sent_manifest) in enumerate(batch):
            path = write_submission(settings.landing, name, data, sent_manifest)
            os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
        outcomes = Ingestor(settings, now=NOW).run()
        con = duckdb.connect(str(settings.build_db), read_only=True)
        registers[workers] = (
            [(o.landing_name, o.status) for o in outcomes],
            con.execute(
                "select s.landing_name, s.status, n.landing_name, s.households_accepted "
                "from raw.submissions s left join raw.submissions n "
                "on n.submission_id = s.superseded_by order by 1"
            ).fetchall(),
            con.execute(
                "select s.landing_name, count(*) from raw.households h "
                "join raw.submissions s using (submission_id) group by all order by 1"
            ).fetchall(),
        )
        con.close()
        assert not list(settings.landing.iterdir())
    assert registers[2] == registers[1]
    assert registers[2][0] == [
        ("a1", "accepted"), ("b1", "accepted"), ("a3", "accepted"), ("a2", "superseded"),
        ("b1-again", "duplicate"), ("a4", "superseded"), ("q", "quarantined"), ("b0", "accepted"),
    ]  # fmt: skip
    superseded_by = {name: by for name, status, by, _ in registers[2][1] if status == "superseded"}
    assert superseded_by == {"a1": "a3", "a2": "a3", "a4": "a3"}


def test_quarantined_newer_submission_does_not_supersede(settings, ingest, query):
    write_submission(
        settings.landing, "old", register(), manifest(sent="2025-04-03T09:00:00+08:00")
    )
    [old] = ingest()
    write_submission(settings.landing, "new", {"keluarga": [], "anggota": [], "bantuan": []},
                     manifest(sent="2025-04-05T09:00:00+08:00"))  # fmt: skip
    ingest()
    assert query(
        "select status from raw.submissions where submission_id = ?", [old.submission_id]
    ) == [("accepted",)]


def test_folder_without_manifest_is_left_alone(settings, ingest, query):
    folder = write_submission(settings.landing, "uploading", register(), omit=("manifest.json",))
    assert ingest() == []
    assert sorted(p.name for p in folder.iterdir()) == [
        "anggota.csv",
        "bantuan.csv",
        "keluarga.csv",
    ]
    assert not settings.build_db.exists() or query("select count(*) from raw.submissions") == [(0,)]


def test_incomplete_zip_is_left_alone(settings, ingest):
    target = write_submission(settings.landing, "s", register(), as_zip="root")
    target.write_bytes(target.read_bytes()[:-30])  # still being uploaded: no central directory yet
    assert ingest() == []
    assert target.exists()


# --- personal data ---------------------------------------------------------------------------


def test_pseudonyms_are_hmac_sha256_of_the_identifier_with_the_key(settings, ingest, query):
    data = register()
    write_submission(settings.landing, "s", data)
    ingest()
    mac = hmac.new(TEST_KEY.encode(), data["keluarga"][0]["no_kk"].encode(), hashlib.sha256)
    expected = int.from_bytes(mac.digest()[:16], "big")  # the MAC's first 128 bits
    assert query("select household_key from raw.households where line = 2") == [(expected,)]


def test_key_is_generated_with_mode_0600_when_not_given(settings, monkeypatch, caplog):
    monkeypatch.delenv("SATUDATA_PSEUDONYM_KEY")
    key = settings.pseudonym_key()
    path = settings.secrets_dir / "pseudonym.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.pseudonym_key() == key and len(key) == 64
    assert "generated a new pseudonym key" in caplog.text


def test_no_nik_no_kk_or_name_reaches_any_table_of_the_build_file(settings, ingest, query, caplog):
    data = register()
    data["keluarga"][0]["kode_desa"] = "64.74.02.9999"  # rejected rows keep values: pseudonymised
    data["anggota"][2]["nik"] = "6.47402E+15"
    data["anggota"][4]["nik"] = "6474029999990001"
    write_submission(settings.landing, "s", data)
    ingest()
    secrets = {row[c] for t in ("keluarga", "anggota", "bantuan") for row in data[t]
               for c in ("no_kk", "nik", "nik_kepala", "nama", "nama_kepala") if row.get(c)}  # fmt: skip
    assert len(secrets) > 80
    tables = query(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type = 'VARCHAR' and table_catalog = current_database()"
    )
    found = []
    for schema, table, column in tables:
        values = {v for (v,) in query(f'select distinct "{column}" from {schema}.{table}') if v}
        found += [(table, column, s) for s in secrets if any(s in v for v in values)]
    assert found == []
    assert not [s for s in secrets if s in caplog.text]


def test_two_runs_with_the_same_key_give_the_same_pseudonyms(settings, ingest, query, tmp_path):
    write_submission(settings.landing, "s", register())
    ingest()
    first = query("select person_key from raw.members order by line")
    other = type(settings)(tmp_path / "other").ensure()
    write_submission(other.landing, "s", register())
    Ingestor(other, now=dt.datetime(2025, 4, 10, tzinfo=dt.UTC)).run()
    import duckdb

    con = duckdb.connect(str(other.build_db), read_only=True)
    assert con.execute("select person_key from raw.members order by line").fetchall() == first


def test_a_second_writer_of_the_build_file_waits_for_the_lock(settings, ingest, query):
    import threading
    import time

    from orchestration.ingest.store import build_lock

    write_submission(settings.landing, "s", register())
    done = threading.Event()
    with build_lock(settings):
        worker = threading.Thread(target=lambda: (ingest(), done.set()))
        worker.start()
        time.sleep(1.0)
        assert not done.is_set()  # waiting for the lock, not failing on DuckDB's
    worker.join(timeout=60)
    assert done.is_set()
    assert counts(query) == (20, 40, 20)


def test_a_quarantined_reports_page_explains_each_reason_once_and_names_files_beside_it(
    settings, ingest
):
    data = register(households=60)
    for row in data["anggota"][::3]:
        row["jenis_kelamin"] = "W"  # 40 cells, one reason
    for row in data["keluarga"][:30]:
        row["desil"] = "99"
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    assert outcome.reason_code == "TOO_MANY_REJECTS"
    [page] = settings.quarantine.rglob("laporan_validasi_validation_report.html")
    html = page.read_text()
    for code in ("CATEGORY_INVALID", "VALUE_OUT_OF_RANGE"):
        assert html.count(REASONS[code][1]) == 1, code  # its words once, however many cells
    named = set(re.findall(r'<a href="([^"#]+)"', html))
    assert named and all((page.parent / name).is_file() for name in named), named
    # the summary is ordered by the cells each reason affects
    order = re.findall(r'id="reason-([A-Z_]+)"', html)
    counts = json.loads(page.with_suffix(".json").read_text())["rejects_by_reason"]
    assert order == sorted(counts, key=lambda code: -counts[code]) and len(order) >= 3
