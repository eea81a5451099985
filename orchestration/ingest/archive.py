"""The archive stage: every file received, byte for byte, by SHA-256, before anything else."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .landing import IGNORED_NAMES, display_name

CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Received:
    """One submission as received: its files archived, its id fixed by their bytes."""

    entry: Path
    submission_id: str
    received_at: dt.datetime
    files: list[dict] = field(default_factory=list)  # path, sha256, size, archived

    @property
    def kind(self) -> str:
        return "zip" if self.entry.is_file() else "folder"


def _archive_object(path: Path, archive: Path) -> tuple[str, Path]:
    sha = sha256_file(path)
    target = archive / "objects" / sha[:2] / sha
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(path, partial)
        partial.replace(target)
    return sha, target


def archive_submission(entry: Path, archive: Path, received_at: dt.datetime) -> Received:
    """Copy every file of ``entry`` into the content-addressed archive (``entry`` holds no
    symbolic link: ``landing.check_no_links`` came first).

    The submission id is the SHA-256 of the zip, or of the folder's sorted file listing
    (relative path and SHA-256 of each file): the same bytes give the same id.
    """
    if entry.is_file():
        paths = [(entry.name, entry)]
    else:
        paths = sorted(
            (str(p.relative_to(entry)), p)
            for p in entry.rglob("*")
            if p.is_file() and p.name.lower() not in IGNORED_NAMES
        )
    files = []
    for relpath, path in paths:
        sha, target = _archive_object(path, archive)
        files.append(
            {
                "path": display_name(relpath),
                "sha256": sha,
                "size": path.stat().st_size,
                "archived": str(target),
            }
        )
    if entry.is_file():
        submission_id = files[0]["sha256"]
    else:
        listing = "".join(f"{f['path']}\t{f['sha256']}\n" for f in files)
        submission_id = hashlib.sha256(listing.encode()).hexdigest()
    record = archive / "submissions" / f"{submission_id}.json"
    if not record.exists():  # written aside and renamed: never half a record
        record.parent.mkdir(parents=True, exist_ok=True)
        partial = record.with_suffix(".partial")
        partial.write_text(
            json.dumps(
                {
                    "submission_id": submission_id,
                    "landing_name": display_name(entry.name),
                    "kind": "zip" if entry.is_file() else "folder",
                    "received_at": received_at.isoformat(),
                    "files": files,
                },
                indent=2,
            )
        )
        partial.replace(record)
    return Received(entry, submission_id, received_at, files)
