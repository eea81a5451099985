"""The landing stage: what is ready in ``landing/``, and how an entry leaves it.

An entry leaves landing only after its bytes are archived: removed once its submission is
recorded, or moved into ``quarantine/`` beside its report when it cannot be trusted.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


def is_ready(entry: Path) -> bool:
    """A folder is ready once its manifest is written (upload tools write it last);
    a zip once its central directory is complete (a zip being uploaded is not a zip yet)."""
    if entry.name.startswith("."):
        return False
    if entry.is_dir():
        return (entry / "manifest.json").is_file()
    if entry.is_file() and entry.suffix.lower() == ".zip":
        return zipfile.is_zipfile(entry)
    return False


def discover(landing: Path) -> list[Path]:
    """Submissions ready in ``landing/``, oldest first."""
    if not landing.is_dir():
        return []
    ready = [entry for entry in landing.iterdir() if is_ready(entry)]
    return sorted(ready, key=lambda p: (p.stat().st_mtime, p.name))


def pending_fingerprint(landing: Path) -> str:
    """A cheap key of what is waiting (names, sizes, mtimes): the sensor's run key."""
    digest = hashlib.sha256()
    for entry in discover(landing):
        files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
        for path in files:
            stat = path.stat()
            digest.update(
                f"{path.relative_to(landing)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def remove(entry: Path) -> None:
    """The bytes are archived and the submission recorded: the landing copy can go."""
    if entry.is_dir():
        shutil.rmtree(entry)
    elif entry.exists():
        entry.unlink()


def quarantine(entry: Path, folder: Path) -> Path:
    """Move the entry, untouched, into ``folder`` (under ``quarantine/``)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.name
    shutil.move(str(entry), target)
    return target
