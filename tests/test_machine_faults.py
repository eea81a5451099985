"""A fault of the machine is not a fault of the data (issue 22).

The data root sits on a small file system made by the test (tmpfs), filled up to leave less
room than a night needs, at many levels, so that the disk fills at every stage in turn:
archiving, reading, validating, writing the reports, loading, the register. Whatever stage it
hits, the run stops with a ``MachineFault`` that says the disk is full, nothing is quarantined
for it, no landed byte is lost, and once room is given back the next run ends exactly as a
clean run does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.faults import MachineFault
from orchestration.ingest.pipeline import Ingestor
from orchestration.settings import Settings
from tests.conftest import NOW, TEST_KEY
from tests.submissions import manifest, register, write_submission

pytestmark = pytest.mark.xdist_group("machine_faults")


def _can_mount(tmp_path: Path) -> str | None:
    if os.geteuid() != 0:
        return "mounting a small file system needs root"
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        return f"this machine cannot mount a tmpfs: {done.stderr.strip()}"
    subprocess.run(["umount", str(probe)], check=True)
    return None


@pytest.fixture
def small_disk(tmp_path: Path):
    reason = _can_mount(tmp_path)
    if reason:
        pytest.skip(reason)
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def land(landing: Path) -> None:
    """Good registers of three units, a later revision of one, a zip, and one register that is
    the data's fault (too many rejects): every path through ingestion."""
    for unit in ("64.74.01", "64.74.02", "64.74.03"):
        write_submission(landing, f"{unit}-r1", register(unit, households=400), manifest(unit))
    write_submission(landing, "64.74.02-r2", register("64.74.02", households=380),
                     manifest("64.74.02", sent="2025-04-04T09:00:00+08:00"), as_zip="root")  # fmt: skip
    bad = register("64.71", households=200, villages=["64.71.01.1001"])
    for row in bad["keluarga"][:60]:
        row["jumlah_anggota"] = "banyak"
    write_submission(landing, "64.71-r1", bad, manifest("64.71"))


def file_hashes(folder: Path) -> set[str]:
    return {
        hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


def register_of(settings: Settings) -> list[tuple]:
    con = duckdb.connect(str(settings.build_db), read_only=True)
    try:
        return con.execute(
            "select landing_name, status, reason_code, households_accepted, members_accepted, "
            "receipts_accepted, rows_rejected from raw.submissions order by all"
        ).fetchall()
    finally:
        con.close()


def kept(settings: Settings) -> set[str]:
    """Every byte the data root holds of what landed: archive, quarantine and landing."""
    return {
        *(p.name for p in (settings.archive / "objects").glob("*/*")),
        *file_hashes(settings.quarantine),
        *file_hashes(settings.landing),
    }


def test_a_full_disk_stops_the_run_quarantines_nothing_and_loses_nothing(
    small_disk, tmp_path, monkeypatch
):
    monkeypatch.setenv("SATUDATA_PSEUDONYM_KEY", TEST_KEY)
    source = tmp_path / "landed"
    land(source)
    landed = file_hashes(source)

    clean = Settings(tmp_path / "clean").ensure()
    shutil.copytree(source, clean.landing, dirs_exist_ok=True)
    Ingestor(clean, now=NOW).run()
    expected = register_of(clean)
    assert {row[1] for row in expected} == {"accepted", "superseded", "quarantined"}
    needed = sum(p.stat().st_size for p in clean.home.rglob("*") if p.is_file())

    faults = []
    for share in [step / 25 for step in range(0, 16)]:
        home = small_disk / "data"
        shutil.rmtree(home, ignore_errors=True)
        settings = Settings(home).ensure()
        shutil.copytree(source, settings.landing, dirs_exist_ok=True)
        filler = small_disk / "filler"
        room = os.statvfs(small_disk)
        with open(filler, "wb") as handle:
            handle.write(b"\0" * max(0, room.f_bavail * room.f_frsize - int(share * needed)))
        try:
            Ingestor(settings, now=NOW).run()
        except MachineFault as fault:
            faults.append(share)
            assert "penuh" in fault.indonesian and "is full" in fault.english, fault
            assert str(small_disk) in fault.english
        if settings.build_db.exists():
            assert not [row for row in register_of(settings) if row[2] == "INGEST_ERROR"], share
        assert landed <= kept(settings), f"bytes lost with {share:.0%} of the room a night needs"
        filler.unlink()

        Ingestor(settings, now=NOW).run()  # room again: as if nothing had happened
        assert register_of(settings) == expected, share
        assert list(settings.landing.iterdir()) == []
        assert landed <= kept(settings)
    assert len(faults) >= 5, f"the disk filled up in too few runs to prove anything: {faults}"


def satudata(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SATUDATA_HOME": str(home), "SATUDATA_PSEUDONYM_KEY": TEST_KEY}
    env.pop("DAGSTER_HOME", None)  # Dagster's storage on the same small disk, as by default
    return subprocess.run([str(Path(sys.executable).with_name("satudata")), *args],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_satudata_run_and_status_on_a_full_disk_say_so_plainly_and_the_next_run_works(
    small_disk, tmp_path
):
    source = tmp_path / "landed"
    land(source)
    landed = file_hashes(source)
    home = small_disk / "data"
    settings = Settings(home).ensure()
    shutil.copytree(source, settings.landing, dirs_exist_ok=True)
    room = os.statvfs(small_disk)
    with open(small_disk / "filler", "wb") as handle:  # room for Dagster's storage, not the data
        handle.write(b"\0" * (room.f_bavail * room.f_frsize - (3 << 20)))

    run = satudata(home, "run")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert f"the disk holding {small_disk} is full" in run.stderr, run.stderr[-3000:]
    assert "The previous publication stays in place." in run.stderr
    status = satudata(home, "status")
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr[-3000:]
    assert landed <= kept(settings)
    if settings.build_db.exists():
        assert not [row for row in register_of(settings) if row[2] == "INGEST_ERROR"]

    (small_disk / "filler").unlink()
    run = satudata(home, "run")
    assert run.returncode == 0, run.stderr[-3000:]
    assert {row[1] for row in register_of(settings)} == {"accepted", "superseded", "quarantined"}
    assert list(settings.landing.iterdir()) == []
    assert sorted(p.name for p in settings.warehouse.glob(".published-*")) == []
    status = satudata(home, "status")
    assert status.returncode == 0 and "Published " in status.stdout, status.stderr[-3000:]


def test_a_publication_killed_half_way_leaves_neither_its_file_nor_its_wal(tmp_path):
    from orchestration.publication.publish import _sweep

    warehouse = tmp_path / "warehouse"
    (warehouse / "publications" / "20250101T000000Z-half").mkdir(parents=True)
    for name in (".published-x.tmp", ".published-x.tmp.wal", "build.duckdb"):
        (warehouse / name).write_bytes(b"")
    _sweep(warehouse)
    assert sorted(p.name for p in warehouse.rglob("*")) == ["build.duckdb", "publications"]
