"""Faults of the machine, told apart from faults of the data.

A full disk, an I/O error or memory running out says nothing about a submission: the run stops
with a plain bilingual message, the entry stays in ``landing/`` and the next run takes it as if
nothing had happened. Only a fault of the submission quarantines it. ``machine_fault`` is the
one place that decides which is which, for ingestion, the publication and the CLI.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sqlite3
from pathlib import Path

import duckdb

# errno -> (Indonesian, English) of what the machine lacks
ERRNOS = {
    errno.ENOSPC: ("disk tempat {where} penuh", "the disk holding {where} is full"),
    errno.EDQUOT: ("kuota disk tempat {where} habis", "the disk quota holding {where} is used up"),
    errno.EIO: (
        "disk tempat {where} gagal baca/tulis (I/O error)",
        "the disk holding {where} gave an I/O error",
    ),
    errno.EROFS: ("disk tempat {where} hanya-baca", "the disk holding {where} is read-only"),
    errno.ENOMEM: ("memori mesin habis", "the machine ran out of memory"),
}
# the same faults as DuckDB, SQLite (Dagster's storage) and the C library word them: read only
# in errors of input/output or storage, and outside quoted text (a file name is not a cause)
WORDS = {
    "no space left on device": errno.ENOSPC,
    "database or disk is full": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "input/output error": errno.EIO,
    "disk i/o error": errno.EIO,
    "read-only file system": errno.EROFS,
    "cannot allocate memory": errno.ENOMEM,
}
_QUOTED = re.compile(r'\\?"(?:[^"\\]|\\.)*?\\?"|\'[^\']*\'')
_QUOTED_PATH = re.compile(r'\\?"(/[^"\\]+)\\?"|\'(/[^\']+)\'')
FULL_BELOW = 4 << 20  # bytes free on a disk that is full for every purpose here
_ERRNO_JSON = re.compile(r'"errno"\s*:\s*"(\d+)"')


class Refused(ValueError):
    """A request a person made that the rules refuse, said in Indonesian and English."""

    def __init__(self, indonesian: str, english: str):
        super().__init__(f"{indonesian} / {english}")
        self.indonesian, self.english = indonesian, english


class MachineFault(RuntimeError):
    """The machine, not the data, failed: stop the run; nothing is quarantined for it."""

    def __init__(self, code: int, where: Path, detail: str):
        indonesian, english = (text.format(where=where) for text in ERRNOS[code])
        self.code, self.where, self.detail = code, where, detail
        self.indonesian = (
            f"{indonesian}. Sediakan ruang lalu jalankan lagi: tidak ada kiriman yang dikarantina "
            "karenanya."
        )
        self.english = (
            f"{english}. Make room and run again: no submission is quarantined for it. ({detail})"
        )
        super().__init__(f"Mesin / machine: {self.indonesian} / {self.english}")


def _chain(exc: BaseException):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def mount_point(path: Path) -> Path:
    """The folder the disk holding ``path`` is mounted on (``path``'s nearest existing parent
    that is a mount point)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _errno(error: BaseException) -> int | None:
    if isinstance(error, OSError):
        return error.errno if error.errno in ERRNOS else None
    storage = (
        duckdb.IOException,
        duckdb.TransactionException,
        duckdb.FatalException,
        sqlite3.OperationalError,
    )
    if not isinstance(error, storage):
        return None
    text = str(error)
    codes = [int(c) for c in _ERRNO_JSON.findall(text) if int(c) in ERRNOS]
    if codes:
        return codes[-1]
    bare = _QUOTED.sub("", text).lower()
    return next((code for words, code in WORDS.items() if words in bare), None)


def machine_fault(exc: BaseException, home: Path) -> MachineFault | None:
    """The ``MachineFault`` behind ``exc`` (or anything it was raised from), or None when it is
    not the machine's. ``home`` is the data root, named when the error names no file."""
    for error in _chain(exc):
        if isinstance(error, MachineFault):
            return error
        if isinstance(error, MemoryError | duckdb.OutOfMemoryException):
            return MachineFault(errno.ENOMEM, home, f"{type(error).__name__}: {error}"[:300])
        code = _errno(error)
        if code is not None:
            text = str(error)
            path = getattr(error, "filename", None) or next(
                (a or b for a, b in _QUOTED_PATH.findall(text)), None
            )
            where = mount_point(Path(path) if path else home)
            if code == errno.EIO and shutil.disk_usage(where).free < FULL_BELOW:
                code = errno.ENOSPC  # (SQLite says "disk I/O error" of a full disk)
            return MachineFault(code, where, text[:300])
        if isinstance(error, duckdb.FatalException):  # the database was invalidated by one
            return MachineFault(errno.EIO, mount_point(home), str(error)[:300])
    return None
