"""Paths and secrets. One data root, ``SATUDATA_HOME`` (default ``./data``).

Everything the project writes lives below it, except Dagster's own home
(``DAGSTER_HOME``, default ``SATUDATA_HOME/dagster``).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = Path(os.environ.get("SATUDATA_DBT_PROJECT_DIR", PROJECT_ROOT / "dbt_project"))
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"

KEY_ENV = "SATUDATA_PSEUDONYM_KEY"
WITA = ZoneInfo("Asia/Makassar")  # the offices' clock: every time shown to a person
# DuckDB's own default is 80 % of RAM; the nightly run shares the machine. dbt's profile reads
# the same variable.
MEMORY_LIMIT = os.environ.get("SATUDATA_DUCKDB_MEMORY_LIMIT", "2GB")
# Submissions ingested at the same time (each on its own DuckDB connection to the build file).
# DuckDB alone keeps two cores about 1.4 busy during ingestion; two submissions at once, 1.9.
INGEST_WORKERS = max(1, int(os.environ.get("SATUDATA_INGEST_WORKERS", "2")))


@dataclass(frozen=True)
class ZipLimits:
    """How much a zip submission may unpack to, counted on the bytes actually extracted.

    Far above any real register (a whole kabupaten's CSVs are a few hundred MB), far below what
    a zip bomb unpacks to."""

    total_bytes: int = 4 << 30  # SATUDATA_ZIP_MAX_BYTES: all members together
    member_bytes: int = 2 << 30  # SATUDATA_ZIP_MAX_MEMBER_BYTES: one member
    ratio: int = 100  # SATUDATA_ZIP_MAX_RATIO: extracted / compressed, per member (past 1 MiB)
    members: int = 100  # SATUDATA_ZIP_MAX_MEMBERS

    @classmethod
    def from_env(cls) -> ZipLimits:
        names = {
            "total_bytes": "SATUDATA_ZIP_MAX_BYTES",
            "member_bytes": "SATUDATA_ZIP_MAX_MEMBER_BYTES",
            "ratio": "SATUDATA_ZIP_MAX_RATIO",
            "members": "SATUDATA_ZIP_MAX_MEMBERS",
        }
        return cls(
            **{field: int(os.environ[env]) for field, env in names.items() if env in os.environ}
        )


@dataclass(frozen=True)
class Settings:
    """The folders below one data root."""

    home: Path

    @classmethod
    def from_env(cls) -> Settings:
        return cls(Path(os.environ.get("SATUDATA_HOME", "data")).resolve())

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def build_db(self) -> Path:
        return self.warehouse / "build.duckdb"

    @property
    def published_db(self) -> Path:
        return self.warehouse / "published.duckdb"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME", self.home / "dagster")).resolve()

    def ensure(self) -> Settings:
        for folder in (self.landing, self.archive, self.quarantine, self.reports, self.warehouse):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def key_file(self) -> Path:
        return self.secrets_dir / "pseudonym.key"

    def pseudonym_key(self, create: bool = True) -> bytes:
        """The HMAC key: ``SATUDATA_PSEUDONYM_KEY``, or the key file; generated (mode 0600)
        only when ``create`` (a warehouse that holds no pseudonyms yet)."""
        from_env = os.environ.get(KEY_ENV)
        if from_env:
            return from_env.encode("utf-8")
        key_file = self.key_file
        if not key_file.exists():
            if not create:
                raise PseudonymKeyError(
                    f"The pseudonym key {key_file} is missing, but the warehouse holds pseudonyms "
                    f"made with it. Restore the file from your backup (or set {KEY_ENV}) and run "
                    "again: a new key would give the same people new pseudonyms "
                    "(docs/operations.md)."
                )
            self.secrets_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.secrets_dir, 0o700)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            log.warning(
                "No %s set: generated a new pseudonym key at %s (mode 0600). "
                "Back it up: without it, pseudonyms of later runs will not match.",
                KEY_ENV,
                key_file,
            )
        return key_file.read_text().strip().encode("utf-8")


class PseudonymKeyError(RuntimeError):
    """The pseudonym key is missing or is not the one the warehouse's pseudonyms were made with."""
