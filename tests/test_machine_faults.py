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
