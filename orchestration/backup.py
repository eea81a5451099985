"""``satudata backup DEST`` and ``satudata restore SRC``: the whole data root, consistent.

A backup is a folder: every file of ``SATUDATA_HOME`` (the archive, the build and published
files with their history, reports, the pseudonym key, the portal's records, Dagster's SQLite
storage), taken while holding the build lock so that no run writes meanwhile; SQLite files are
copied with SQLite's own backup (a daemon may be writing them); hard links (the current
publication is one) and symbolic links are kept as they are. ``BACKUP.json`` says what it
holds, and where Dagster's storage is when it is not in the data root (PostgreSQL: back it
up with ``pg_dump``; docs/operations.md).

Restore copies a backup into an empty data root the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from orchestration.ingest.store import build_lock
from orchestration.publication.publish import current_id
from orchestration.settings import KEY_ENV, Settings

MANIFEST = "BACKUP.json"
SKIPPED = {"tmp"}  # scratch space of runs
SQLITE_SUFFIXES = {".db", ".sqlite"}


class BackupError(RuntimeError):
    pass


def _copy_tree(source: Path, target: Path) -> int:
    """Every file below ``source`` into ``target``; returns the bytes written."""
    seen: dict[tuple[int, int], Path] = {}
    written = 0
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        relative = here.relative_to(source)
        dirs[:] = [d for d in dirs if not (relative == Path(".") and d in SKIPPED)]
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            path, out = here / name, target / relative / name
            stat = path.lstat()
            if path.is_symlink():
                out.symlink_to(os.readlink(path))
            elif (stat.st_dev, stat.st_ino) in seen:
                os.link(seen[(stat.st_dev, stat.st_ino)], out)
            elif path.suffix in SQLITE_SUFFIXES and _is_sqlite(path):
                with closing(sqlite3.connect(path)) as src, closing(sqlite3.connect(out)) as dst:
                    src.backup(dst)
                written += out.stat().st_size
            else:
                shutil.copy2(path, out)
                written += stat.st_size
            if not path.is_symlink():
                seen[(stat.st_dev, stat.st_ino)] = out
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
    return written


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def _empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def _dagster_storage(settings: Settings) -> str:
    config = settings.dagster_home / "dagster.yaml"
    text = config.read_text() if config.exists() else ""
    if "postgres" in text:
        return (
            "PostgreSQL (deploy/dagster.yaml): not in this backup; back it up with "
            "pg_dump -Fc and restore it with pg_restore (docs/operations.md)"
        )
    if settings.dagster_home.resolve().is_relative_to(settings.home):
        return "SQLite, inside the data root: in this backup"
    return f"SQLite in {settings.dagster_home}, outside the data root: not in this backup"


def backup(settings: Settings, dest: Path) -> dict:
    if not _empty(dest):
        raise BackupError(f"{dest} is not empty: a backup goes into a new or empty folder")
    if dest.resolve().is_relative_to(settings.home.resolve()):
        raise BackupError(f"{dest} is inside the data root: a backup goes beside it, not in it")
    if not settings.home.exists():
        raise BackupError(f"there is no data root at {settings.home}")
    dest.mkdir(parents=True, exist_ok=True)
    with build_lock(settings):  # no run writes while the files are copied
        written = _copy_tree(settings.home, dest)
    about = {
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "data_root": str(settings.home),
        "publication": current_id(settings),
        "bytes": written,
        "pseudonym_key": (
            f"from ${KEY_ENV}: NOT in this backup, keep it with it"
            if os.environ.get(KEY_ENV)
            else "secrets/pseudonym.key: in this backup (keep the backup as secret as the key)"
        ),
        "dagster_storage": _dagster_storage(settings),
    }
    (dest / MANIFEST).write_text(json.dumps(about, indent=2))
    return about


def restore(settings: Settings, source: Path) -> dict:
    about_file = source / MANIFEST
    if not about_file.exists():
        raise BackupError(f"{source} is not a satudata backup (no {MANIFEST})")
    if not _empty(settings.home):
        raise BackupError(
            f"the data root {settings.home} is not empty: restore into a new or empty folder "
            "(move the old one aside first)"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    _copy_tree(source, settings.home)
    (settings.home / MANIFEST).unlink()
    return json.loads(about_file.read_text())
