"""The landing stage: what is ready in ``landing/``, and how an entry leaves it.

An entry leaves landing only after its bytes are archived: removed once its submission is
recorded, or moved into ``quarantine/`` beside its report when it cannot be trusted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

from .contract import QuarantineError

IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


def is_ready(entry: Path) -> bool:
    """A folder is ready once its manifest is written (upload tools write it last);
    a zip once its central directory is complete (a zip being uploaded is not a zip yet)."""
    if entry.name.startswith("."):
        return False
    if entry.is_symlink():  # never followed: ready to be refused (``check_no_links``)
        return True
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
    return sorted(ready, key=lambda p: (p.lstat().st_mtime, p.name))


def pending_fingerprint(landing: Path) -> str:
    """A cheap key of what is waiting (names, sizes, mtimes): the sensor's run key."""
    digest = hashlib.sha256()
    for entry in discover(landing):
        files = [entry] if not entry.is_dir() or entry.is_symlink() else sorted(entry.rglob("*"))
        for path in files:
            stat = path.lstat()
            digest.update(
                f"{path.relative_to(landing)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def display_name(name: str) -> str:
    """A file name as text that can be written anywhere: bytes that are not UTF-8 (a name
    saved on an old Windows machine) are kept as ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def check_no_links(entry: Path) -> None:
    """Symbolic links are never followed, read or archived: neither the entry itself nor
    anything inside it (``os.walk`` lists a linked folder without entering it)."""
    if entry.is_symlink():
        raise QuarantineError("LINK_NOT_ALLOWED", f"{display_name(entry.name)} is a symbolic link")
    if not entry.is_dir():
        return
    for folder, folders, files in os.walk(entry):
        for name in folders + files:
            path = Path(folder, name)
            if path.is_symlink():
                inside = display_name(str(path.relative_to(entry)))
                raise QuarantineError("LINK_NOT_ALLOWED", f"{inside} is a symbolic link")


def remove(entry: Path) -> None:
    """The bytes are archived and the submission recorded: the landing copy can go."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    elif entry.exists() or entry.is_symlink():
        entry.unlink()


def quarantine(entry: Path, folder: Path) -> Path:
    """Move the entry, untouched, into ``folder`` (under ``quarantine/``)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.name
    if target.exists() or target.is_symlink():  # the same bytes are already kept there
        remove(entry)
    else:
        shutil.move(entry, target)  # the entry itself: a link is moved as a link
    return target
