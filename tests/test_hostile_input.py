"""Hostile and broken uploads: each is handled on its own, quarantined with a reason, never
followed outside landing, and its good neighbours in the same landing are ingested."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import zipfile
from pathlib import Path

import pytest

from orchestration.ingest.pipeline import Ingestor
from orchestration.settings import Settings, ZipLimits
from tests.conftest import NOW, TEST_KEY
from tests.submissions import manifest, register, write_submission

NEIGHBOURS = ("64.74.01", "64.74.03")


def with_neighbours(settings: Settings) -> None:
    """Two good submissions from other units, in the same landing as the bad one."""
    for unit in NEIGHBOURS:
        villages = [f"{unit}.100{v}" for v in (1, 2, 3)]
        data = register(unit, households=5, villages=villages)
        write_submission(settings.landing, f"good-{unit}", data, manifest(unit))


def assert_neighbours_ingested_and_landing_empty(settings: Settings, outcomes, query) -> None:
    by_unit = {o.unit_code: o.status for o in outcomes if o.unit_code in NEIGHBOURS}
    assert by_unit == dict.fromkeys(NEIGHBOURS, "accepted")
    accepted = query("select unit_code from raw.submissions where status = 'accepted' order by 1")
    assert [u for (u,) in accepted if u in NEIGHBOURS] == list(NEIGHBOURS)
    assert list(settings.landing.iterdir()) == []  # nothing left to fail again


def quarantined(outcomes, name: str):
    [outcome] = [o for o in outcomes if o.landing_name == name]
    assert outcome.status == "quarantined"
    return outcome


@pytest.mark.parametrize("depth", [30_000, 100_000])  # under and over the manifest's size limit
def test_a_deeply_nested_manifest_is_invalid_not_a_crash(settings, ingest, query, depth):
    with_neighbours(settings)
    write_submission(settings.landing, "nested", register(), "[" * depth)
    outcomes = ingest()
    assert quarantined(outcomes, "nested").reason_code == "MANIFEST_INVALID"
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)


def test_a_file_whose_name_is_not_utf8_quarantines_only_its_submission(settings, ingest, query):
    with_neighbours(settings)
    folder = write_submission(settings.landing, "odd-name", register())
    (folder / os.fsdecode(b"lampiran Ma\x92ruf.txt")).write_bytes(b"catatan")
    os.utime(folder / "manifest.json")
    outcomes = ingest()
    outcome = next(o for o in outcomes if o.landing_name == "odd-name")
    assert outcome.status == "accepted"  # an extra file, archived under a readable name
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)
    reports = list(settings.reports.rglob("*.json"))
    assert all(json.loads(p.read_text()) for p in reports)  # every report is valid UTF-8 JSON


def test_a_landing_folder_whose_name_is_not_utf8_is_handled(settings, ingest, query):
    with_neighbours(settings)
    name = os.fsdecode(b"kiriman Ma\x92ruf")
    write_submission(settings.landing, name, register())
    outcomes = ingest()
    assert len(outcomes) == 3
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)


def test_a_landing_entry_that_is_a_symlink_is_never_followed(settings, ingest, query, tmp_path):
    with_neighbours(settings)
    outside = write_submission(tmp_path / "elsewhere", "real", register())
    (settings.landing / "link").symlink_to(outside, target_is_directory=True)
    outcomes = ingest()
    assert quarantined(outcomes, "link").reason_code == "LINK_NOT_ALLOWED"
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)
    assert sorted(p.name for p in outside.iterdir()) == [
        "anggota.csv", "bantuan.csv", "keluarga.csv", "manifest.json"
    ]  # the target is untouched  # fmt: skip
    archived = {p.read_bytes() for p in (settings.archive / "objects").rglob("*") if p.is_file()}
    assert (outside / "keluarga.csv").read_bytes() not in archived


@pytest.mark.parametrize("as_name", ["extra.txt", "keluarga.csv"])
def test_a_symlink_inside_a_submission_is_never_read_or_archived(settings, ingest, query, as_name):
    with_neighbours(settings)
    folder = write_submission(settings.landing, "with-link", register(),
                              omit=("keluarga.csv",) if as_name == "keluarga.csv" else ())  # fmt: skip
    (folder / as_name).symlink_to("/etc/passwd")
    os.utime(folder / "manifest.json")
    outcomes = ingest()
    assert quarantined(outcomes, "with-link").reason_code == "LINK_NOT_ALLOWED"
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)
    passwd = Path("/etc/passwd").read_bytes()
    archived = [p for p in (settings.archive / "objects").rglob("*") if p.is_file()]
    assert all(p.read_bytes() != passwd for p in archived)


def test_an_unreadable_file_quarantines_only_its_entry(settings, ingest, query, monkeypatch):
    """A file the run cannot read (mode 000 for a non-root run; root reads anything, so the
    refusal is simulated where the archive opens it)."""
    from orchestration.ingest import archive

    with_neighbours(settings)
    folder = write_submission(settings.landing, "unreadable", register())
    original = archive.sha256_file

    def sha256_file(path: Path) -> str:
        if path == folder / "anggota.csv":
            raise PermissionError(13, "Permission denied", str(path))
        return original(path)

    monkeypatch.setattr(archive, "sha256_file", sha256_file)
    outcomes = ingest()
    outcome = quarantined(outcomes, "unreadable")
    assert outcome.reason_code == "INGEST_ERROR" and "Permission denied" in outcome.detail
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)
    [kept] = settings.quarantine.iterdir()
    assert (kept / "unreadable" / "anggota.csv").exists()  # the files, untouched, beside the report
    assert (kept / "laporan_validasi_validation_report.html").exists()


def test_any_error_in_one_entry_quarantines_it_and_the_others_go_on(
    settings, ingest, query, monkeypatch
):
    """Whatever one entry raises after it was archived, that entry is quarantined with a
    report and the rest of the batch is ingested."""
    from orchestration.ingest import read

    with_neighbours(settings)
    write_submission(settings.landing, "boom", register())
    original = read.read_tables

    def failing(con, folder: Path, workdir: Path):
        if folder.name == "boom":
            raise RecursionError("maximum recursion depth exceeded")
        return original(con, folder, workdir)

    monkeypatch.setattr(read, "read_tables", failing)
    outcomes = ingest()
    outcome = quarantined(outcomes, "boom")
    assert outcome.reason_code == "INGEST_ERROR" and "RecursionError" in outcome.detail
    assert outcome.unit_code == "64.74.02"  # its manifest was read: the report is under its unit
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)
    [folder] = settings.quarantine.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == [
        "boom", "laporan_validasi_validation_report.html", "laporan_validasi_validation_report.json"
    ]  # fmt: skip


def _zip(settings: Settings, name: str, padding: int = 0, members: int = 0) -> Path:
    """A valid zip submission, with ``padding`` bytes of NULs in one more member and
    ``members`` more empty members."""
    path = write_submission(settings.landing, name, register(), as_zip="root")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        if padding:
            with archive.open("padding.bin", "w", force_zip64=True) as out:
                for _ in range(padding >> 20):
                    out.write(bytes(1 << 20))
        for i in range(members):
            archive.writestr(f"lampiran/{i}.txt", "")
    return path


@pytest.mark.parametrize(
    ("env", "padding", "members"),
    [
        ({}, 256 << 20, 0),  # a zip bomb: 256 MiB of NULs in about 250 KB, over the ratio
        ({"SATUDATA_ZIP_MAX_MEMBER_BYTES": "8388608", "SATUDATA_ZIP_MAX_RATIO": "100000"}, 16 << 20, 0),
        ({"SATUDATA_ZIP_MAX_BYTES": "4096"}, 0, 0),
        ({}, 0, 150),
    ],
    ids=["ratio", "member size", "total size", "members"],
)  # fmt: skip
def test_a_zip_past_a_limit_is_quarantined_before_it_is_written_out(
    settings, query, monkeypatch, env, padding, members
):
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    settings = dataclasses.replace(settings, zip_limits=ZipLimits.from_env())
    with_neighbours(settings)
    _zip(settings, "bomb", padding, members)
    from orchestration.ingest import read

    biggest = []
    original = read._within

    def watched(limits, member, written, total):
        original(limits, member, written, total)
        biggest.append(total)

    monkeypatch.setattr(read, "_within", watched)
    outcomes = Ingestor(settings, now=NOW).run()
    assert quarantined(outcomes, "bomb.zip").reason_code == "ZIP_LIMIT_EXCEEDED"
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)
    assert max(biggest, default=0) <= 64 << 20  # stopped early, not extracted in full
    assert not list((settings.home / "tmp").glob("ingest-*"))


def test_a_zip_holding_a_symlink_is_quarantined(settings, ingest, query):
    with_neighbours(settings)
    path = write_submission(settings.landing, "zlink", register(), as_zip="root")
    with zipfile.ZipFile(path, "a") as archive:
        link = zipfile.ZipInfo("keluarga_lama.csv")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    outcomes = ingest()
    assert quarantined(outcomes, "zlink.zip").reason_code == "LINK_NOT_ALLOWED"
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)


def test_a_send_date_later_than_receipt_is_invalid_and_supersedes_nothing(settings, ingest, query):
    from tests.conftest import NOW

    with_neighbours(settings)
    write_submission(
        settings.landing, "future", register(), manifest(sent="2099-01-01T00:00:00+08:00")
    )
    within_skew = (NOW + dt.timedelta(minutes=4)).isoformat()
    write_submission(settings.landing, "skewed", register(households=3), manifest(sent=within_skew))
    outcomes = ingest()
    outcome = quarantined(outcomes, "future")
    assert (
        outcome.reason_code == "MANIFEST_INVALID"
        and "later than the time of receipt" in outcome.detail
    )
    assert next(o for o in outcomes if o.landing_name == "skewed").status == "accepted"
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)


# --- the pseudonym key ---------------------------------------------------------------------


def test_a_missing_key_stops_ingestion_before_anything_is_read(
    settings, ingest, query, monkeypatch
):
    from orchestration.settings import PseudonymKeyError

    monkeypatch.delenv("SATUDATA_PSEUDONYM_KEY")
    write_submission(settings.landing, "first", register())
    ingest()  # an empty warehouse: a key is generated
    before = query("select count(*) from raw.members")
    settings.key_file.unlink()
    with_neighbours(settings)
    with pytest.raises(PseudonymKeyError, match=str(settings.key_file)) as error:
        ingest()
    assert "Restore" in str(error.value)
    assert not settings.key_file.exists()  # no new key was made
    assert query("select count(*) from raw.members") == before
    assert len(list(settings.landing.iterdir())) == 2  # nothing taken: it waits for the key


def test_a_different_key_stops_ingestion(settings, ingest, query, monkeypatch):
    from orchestration.settings import PseudonymKeyError

    write_submission(settings.landing, "first", register())
    ingest()
    monkeypatch.setenv("SATUDATA_PSEUDONYM_KEY", "another-key")
    with_neighbours(settings)
    with pytest.raises(PseudonymKeyError, match="not the one"):
        ingest()
    monkeypatch.setenv("SATUDATA_PSEUDONYM_KEY", TEST_KEY)  # the right key restored
    outcomes = ingest()
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)


# --- rows a blocking expectation would refuse are refused at ingestion -----------------------


def test_a_member_born_too_long_ago_is_rejected_with_a_reason_and_the_rest_published(
    settings, ingest, query
):
    with_neighbours(settings)
    data = register()
    data["anggota"][0]["tanggal_lahir"] = "1850-06-01"
    write_submission(settings.landing, "s", data)
    outcomes = ingest()
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)
    [outcome] = [o for o in outcomes if o.landing_name == "s"]
    assert outcome.status == "accepted" and outcome.rows_rejected >= 1
    assert query(
        "select column_name, reason_code from raw.rejects where table_name = 'anggota' "
        "and line = 2 and submission_id = ?",
        [outcome.submission_id],
    ) == [("tanggal_lahir", "VALUE_OUT_OF_RANGE")]
    assert query("select max(age_years) from raw.members") < [(131,)]
    report = json.loads(Path(outcome.report_path).read_text())
    assert {"reason_code": "VALUE_OUT_OF_RANGE", "line": 2} in [
        {k: r[k] for k in ("reason_code", "line")} for r in report["rejects"]
    ]


def _suite_errors(table: str) -> list[str]:
    suite = json.loads(
        (Path(__file__).parent.parent / "expectations" / f"{table}.json").read_text()
    )
    return [
        f"{e['type']}:{e['kwargs'].get('column') or e.get('meta', {}).get('notes')}"
        for e in suite["expectations"]
        if e.get("meta", {}).get("severity", "ERROR") == "ERROR"
    ]


# For every ERROR expectation of the household- and person-level suites: the bad input that
# would break it and the reason code ingestion rejects it with, or why no submitted value can.
BY_CONSTRUCTION = "set by ingestion or the reference data, not by a submitted value"
ROW_RULES = {
    "int_households_classified": {
        "expect_column_values_to_not_be_null:submission_id": BY_CONSTRUCTION,
        "expect_column_values_to_not_be_null:household_key": ("keluarga", "no_kk", "", "REQUIRED_MISSING"),
        "expect_column_values_to_not_be_null:village_code": ("keluarga", "kode_desa", "", "REQUIRED_MISSING"),
        "expect_column_values_to_not_be_null:period": BY_CONSTRUCTION,
        "expect_column_values_to_not_be_null:household_size": ("keluarga", "jumlah_anggota", "", "REQUIRED_MISSING"),
        "expect_column_values_to_not_be_null:expenditure_per_capita": ("keluarga", "pengeluaran_per_kapita", "", "REQUIRED_MISSING"),
        "expect_column_values_to_be_between:household_size": ("keluarga", "jumlah_anggota", "31", "VALUE_OUT_OF_RANGE"),
        "expect_column_values_to_be_between:expenditure_per_capita": ("keluarga", "pengeluaran_per_kapita", "-5", "VALUE_OUT_OF_RANGE"),
        "expect_column_values_to_be_between:poverty_gap": ("keluarga", "pengeluaran_per_kapita", "-1", "VALUE_OUT_OF_RANGE"),
        "unexpected_rows_expectation:poverty line year is never after the period": BY_CONSTRUCTION,
    },
    "int_members_aged": {
        "expect_column_values_to_not_be_null:submission_id": BY_CONSTRUCTION,
        "expect_column_values_to_not_be_null:person_key": ("anggota", "nik", "", "REQUIRED_MISSING"),
        "expect_column_values_to_not_be_null:household_key": ("anggota", "no_kk", "", "REQUIRED_MISSING"),
        "expect_column_values_to_not_be_null:village_code": ("keluarga", "kode_desa", "", "REQUIRED_MISSING"),
        "expect_column_values_to_not_be_null:birth_date": ("anggota", "tanggal_lahir", "", "REQUIRED_MISSING"),
        "expect_column_values_to_not_be_null:age_years": ("anggota", "tanggal_lahir", "31/02/1990", "VALUE_UNPARSEABLE"),
        "expect_column_values_to_be_between:age_years": ("anggota", "tanggal_lahir", "1850-06-01", "VALUE_OUT_OF_RANGE"),
        "unexpected_rows_expectation:working-age members have an employment status": ("anggota", "status_pekerjaan", "", "REQUIRED_MISSING"),
        "expect_column_values_to_be_in_set:sex": ("anggota", "jenis_kelamin", "X", "CATEGORY_INVALID"),
    },
}  # fmt: skip


@pytest.mark.parametrize("table", sorted(ROW_RULES))
def test_every_blocking_expectation_on_household_and_person_rows_has_its_row_rule(table):
    assert sorted(ROW_RULES[table]) == sorted(_suite_errors(table))


@pytest.mark.parametrize(
    ("expectation", "rule"),
    [(e, r) for rules in ROW_RULES.values() for e, r in rules.items() if r != BY_CONSTRUCTION],
)
def test_a_row_breaking_a_blocking_expectation_is_rejected_at_ingestion(
    settings, ingest, query, expectation, rule
):
    source, column, value, reason = rule
    data = register()
    data[source][0][column] = value  # line 2 of its file
    write_submission(settings.landing, "s", data)
    [outcome] = ingest()
    assert outcome.status == "accepted", expectation  # the rest goes on
    assert (column, reason) in query(
        "select column_name, reason_code from raw.rejects where table_name = ? and line = 2",
        [source],
    )


# --- personal data typed in the wrong column -----------------------------------------------


def test_identifiers_and_names_in_the_wrong_column_never_stay_in_clear(settings, ingest, query):
    with_neighbours(settings)
    data = register()
    a_nik = data["anggota"][0]["nik"]
    data["keluarga"][1]["kode_desa"] = a_nik  # a NIK typed into kode_desa
    data["anggota"][2]["jenis_kelamin"] = "Siti Aminah"  # a name typed into jenis_kelamin
    data["bantuan"][3]["kode_program"] = "Budi Santoso"
    data["keluarga"][4]["jumlah_anggota"] = "tiga"  # an ordinary typo stays readable
    write_submission(settings.landing, "s", data)
    outcomes = ingest()
    assert_neighbours_ingested_and_landing_empty(settings, outcomes, query)
    [outcome] = [o for o in outcomes if o.landing_name == "s"]
    stored = {v for (v,) in query("select value from raw.rejects") if v}
    assert not stored & {a_nik, "Siti Aminah", "Budi Santoso"}
    assert "tiga" in stored
    text = (
        Path(outcome.report_path).read_text()
        + Path(outcome.report_path).with_suffix(".html").read_text()
    )
    for secret in (a_nik, "Siti", "Aminah", "Budi", "Santoso"):
        assert secret not in text
    assert "tiga" in text


UNPRIVILEGED_INGEST = """
import encodings.cp1252, encodings.utf_8_sig, encodings.unicode_escape, os  # (jinja2 reads that codec)
from orchestration.ingest.pipeline import Ingestor  # imported while the interpreter is readable
from orchestration.settings import Settings
os.setgid(65534)
os.setuid(65534)  # nobody: a file of mode 000 cannot be read any more
for outcome in Ingestor(Settings.from_env()).run():
    print(outcome.landing_name, outcome.status, outcome.reason_code, outcome.detail)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_mode_000_file_read_by_a_non_root_run_quarantines_only_its_submission():
    import shutil
    import subprocess
    import sys
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="satudata-nobody-")) / "data"
    try:
        settings = Settings(home).ensure()
        with_neighbours(settings)
        folder = write_submission(settings.landing, "locked", register())
        for path in [home.parent, *home.rglob("*"), home]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        (folder / "anggota.csv").chmod(0)
        # Deterministic whatever else the machine runs: one submission at a time (no thread
        # timing), a HOME the unprivileged user can read (nothing looks into /root), no limit
        # on time but the suite's, and everything it printed when it fails.
        env = {**os.environ, "SATUDATA_HOME": str(home), "SATUDATA_PSEUDONYM_KEY": TEST_KEY,
               "SATUDATA_INGEST_WORKERS": "1", "HOME": str(home.parent)}  # fmt: skip
        done = subprocess.run([sys.executable, "-c", UNPRIVILEGED_INGEST], capture_output=True,
                              text=True, timeout=900, cwd=home.parent, env=env)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr[-5000:]
        lines = sorted(done.stdout.splitlines())
        assert len(lines) == 3, done.stdout + done.stderr[-5000:]
        assert lines[-1].startswith("locked quarantined INGEST_ERROR PermissionError"), lines
        assert [line.split()[1] for line in lines[:2]] == ["accepted", "accepted"], lines
        assert list(settings.landing.iterdir()) == []
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)
