"""Every setting, read from the environment in one place (``Settings.from_env``).

One data root, ``SATUDATA_HOME`` (default ``./data``): everything the project writes lives
below it, except Dagster's own home (``DAGSTER_HOME``, default ``SATUDATA_HOME/dagster``).
docs/operations.md lists the variables.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = Path(os.environ.get("SATUDATA_DBT_PROJECT_DIR", PROJECT_ROOT / "dbt_project"))
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"

KEY_ENV = "SATUDATA_PSEUDONYM_KEY"
WITA = ZoneInfo("Asia/Makassar")  # the offices' clock: every time shown to a person


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
            **{name: int(os.environ[env]) for name, env in names.items() if env in os.environ}
        )


@dataclass(frozen=True)
class AlertSettings:
    """The SMTP server and addresses of the failure e-mails (``SATUDATA_ALERT_*``)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    starttls: bool = False

    @classmethod
    def from_env(cls) -> AlertSettings | None:
        """None when no SMTP server is set (alerts off)."""
        env = os.environ.get
        host = env("SATUDATA_ALERT_SMTP_HOST")
        recipients = tuple(r.strip() for r in env("SATUDATA_ALERT_TO", "").split(",") if r.strip())
        if not host or not recipients:
            return None
        return cls(
            host=host,
            port=int(env("SATUDATA_ALERT_SMTP_PORT", "25")),
            sender=env("SATUDATA_ALERT_FROM", "satudata@localhost"),
            recipients=recipients,
            user=env("SATUDATA_ALERT_SMTP_USER") or None,
            password=env("SATUDATA_ALERT_SMTP_PASSWORD") or None,
            starttls=env("SATUDATA_ALERT_SMTP_STARTTLS", "0") == "1",
        )


@dataclass(frozen=True)
class Settings:
    """The folders below one data root, and how the night may use the machine."""

    home: Path
    # DuckDB's own default is 80 % of RAM; the nightly run shares the machine. dbt's profile
    # reads the same variable (SATUDATA_DUCKDB_MEMORY_LIMIT).
    memory_limit: str = "2GB"
    ingest_workers: int = 2  # submissions ingested at the same time (SATUDATA_INGEST_WORKERS)
    keep_publications: int = 5  # publications kept for rollback (SATUDATA_KEEP_PUBLICATIONS)
    zip_limits: ZipLimits = field(default_factory=ZipLimits)
    alerts: AlertSettings | None = None
    ui_url: str | None = None  # the Dagster UI's address, for links in alerts (SATUDATA_UI_URL)
    # the portal: one upload's bytes at most, and cookies sent over TLS only (behind the proxy)
    portal_max_upload_bytes: int = 1 << 30  # SATUDATA_PORTAL_MAX_UPLOAD_BYTES
    portal_secure_cookies: bool = False  # SATUDATA_PORTAL_SECURE_COOKIES=1

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            home=Path(env("SATUDATA_HOME", "data")).resolve(),
            memory_limit=env("SATUDATA_DUCKDB_MEMORY_LIMIT", "2GB"),
            ingest_workers=max(1, int(env("SATUDATA_INGEST_WORKERS", "2"))),
            keep_publications=max(2, int(env("SATUDATA_KEEP_PUBLICATIONS", "5"))),
            zip_limits=ZipLimits.from_env(),
            alerts=AlertSettings.from_env(),
            ui_url=env("SATUDATA_UI_URL") or None,
            portal_max_upload_bytes=int(env("SATUDATA_PORTAL_MAX_UPLOAD_BYTES", str(1 << 30))),
            portal_secure_cookies=env("SATUDATA_PORTAL_SECURE_COOKIES", "0") == "1",
        )

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
