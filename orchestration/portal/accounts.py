"""The portal's own records, in one SQLite file (``SATUDATA_HOME/portal/portal.sqlite``): its
people and their roles, sessions, the uploads it wrote into landing, the sign-off decisions it
was asked for, and the audit log. Passwords are kept only as argon2 hashes.

A person is an ``operator`` of one submitting unit, a ``walidata`` of a regency or of the
province, or a ``reader``. Repeated failed logins lock the account for a while.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orchestration.forum.signoff import SignoffError, checked_name
from orchestration.ingest.contract import normalise_unit_code
from orchestration.ingest.store import submitting_units
from orchestration.settings import Settings

ROLES = ("operator", "walidata", "reader")
FAILURES_BEFORE_LOCK = 5
LOCK_MINUTES = 15
SESSION_HOURS = 8
PASSWORD_MIN = 10
HASHER = PasswordHasher()

SCHEMA = """
create table if not exists users (
    username text primary key,
    full_name text not null,        -- who decides, as recorded in the sign-off log
    role text not null,
    scope text,                     -- operator: the unit; walidata: the regency or '64'
    password_hash text not null,
    disabled integer not null default 0,
    failures integer not null default 0,
    locked_until text
);
create table if not exists sessions (
    token_hash text primary key,    -- SHA-256 of the cookie's token: the token itself is not kept
    username text not null references users (username),
    csrf text not null,
    expires_at text not null
);
create table if not exists uploads (
    upload_id text primary key,
    username text not null,
    unit_code text not null,
    period text not null,
    landing_name text not null,
    received_at text not null
);
create table if not exists decisions (
    request_id text primary key,
    username text not null,
    action text not null,
    region_code text not null,
    period text not null,
    note text,
    asked_at text not null,
    state text not null,            -- waiting | recorded | refused
    outcome text
);
create table if not exists audit (
    at text not null,
    username text,
    event text not null,
    detail text,
    client text
);
"""


class AccountError(ValueError):
    """A user cannot be added or changed as asked."""


@dataclass(frozen=True)
class User:
    username: str
    full_name: str
    role: str
    scope: str | None

    def sees_unit(self, unit: str) -> bool:
        """An operator sees their own unit; a walidata every unit below their region."""
        if self.role == "operator":
            return unit == self.scope
        if self.role == "walidata":
            return unit == self.scope or unit.startswith(f"{self.scope}.")
        return False


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Accounts:
    def __init__(self, settings: Settings):
        self.path = settings.home / "portal" / "portal.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)
        with self.connect() as con:
            con.executescript(SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            with con:  # one transaction
                yield con
        finally:
            con.close()

    def audit(self, event: str, username: str | None, detail: str = "", client: str = "") -> None:
        with self.connect() as con:
            con.execute(
                "insert into audit values (?, ?, ?, ?, ?)",
                [now().isoformat(), username, event, detail[:500], client[:100]],
            )

    # --- people ------------------------------------------------------------------------------
    def add(self, username: str, full_name: str, role: str, scope: str | None, password: str):
        if not username.isascii() or not username.replace(".", "").replace("_", "").isalnum():
            raise AccountError("a username is letters, digits, '.' and '_' only")
        if role not in ROLES:
            raise AccountError(f"the role is one of {', '.join(ROLES)}")
        try:
            full_name = checked_name(full_name)
        except SignoffError as exc:
            raise AccountError(exc.english) from None
        scope = _checked_scope(role, scope)
        if len(password) < PASSWORD_MIN:
            raise AccountError(f"a password has at least {PASSWORD_MIN} characters")
        with self.connect() as con:
            if con.execute("select 1 from users where username = ?", [username]).fetchone():
                raise AccountError(f"{username} exists already")
            con.execute(
                "insert into users (username, full_name, role, scope, password_hash) "
                "values (?, ?, ?, ?, ?)",
                [username, full_name, role, scope, HASHER.hash(password)],
            )
        self.audit("user_added", username, f"{role} {scope or ''}".strip())

    def disable(self, username: str) -> None:
        with self.connect() as con:
            if not con.execute(
                "update users set disabled = 1 where username = ?", [username]
            ).rowcount:
                raise AccountError(f"no user {username}")
            con.execute("delete from sessions where username = ?", [username])
        self.audit("user_disabled", username)

    def list(self) -> list[sqlite3.Row]:
        with self.connect() as con:
            return con.execute(
                "select username, full_name, role, scope, disabled, locked_until from users "
                "order by role, scope, username"
            ).fetchall()

    def login(self, username: str, password: str, client: str) -> str | None:
        """A new session token, or None. Every attempt is in the audit log; the password never."""
        with self.connect() as con:
            row = con.execute("select * from users where username = ?", [username]).fetchone()
        moment = now()
        if row is None or row["disabled"]:
            HASHER.hash(password)  # the same time as a real check: no hint of who exists
            self.audit("login_failed", username[:64], "unknown or disabled", client)
            return None
        if row["locked_until"] and dt.datetime.fromisoformat(row["locked_until"]) > moment:
            self.audit("login_refused", username, "account locked", client)
            return None
        try:
            HASHER.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            failures = row["failures"] + 1
            locked = moment + dt.timedelta(minutes=LOCK_MINUTES)
            with self.connect() as con:
                con.execute(
                    "update users set failures = ?, locked_until = ? where username = ?",
                    [
                        0 if failures >= FAILURES_BEFORE_LOCK else failures,
                        locked.isoformat() if failures >= FAILURES_BEFORE_LOCK else None,
                        username,
                    ],
                )
            locked_now = failures >= FAILURES_BEFORE_LOCK
            self.audit(
                "account_locked" if locked_now else "login_failed",
                username,
                f"{failures} failed attempts"
                + (f", locked {LOCK_MINUTES} min" if locked_now else ""),
                client,
            )
            return None
        token = secrets.token_urlsafe(32)
        with self.connect() as con:
            con.execute(
                "update users set failures = 0, locked_until = null where username = ?",
                [username],
            )
            con.execute("delete from sessions where expires_at < ?", [moment.isoformat()])
            con.execute(
                "insert into sessions values (?, ?, ?, ?)",
                [
                    _digest(token),
                    username,
                    secrets.token_urlsafe(32),
                    (moment + dt.timedelta(hours=SESSION_HOURS)).isoformat(),
                ],
            )
        self.audit("login", username, "", client)
        return token

    def session(self, token: str | None) -> tuple[User, str] | None:
        """The user of a live session and its CSRF token."""
        if not token:
            return None
        with self.connect() as con:
            row = con.execute(
                "select u.username, u.full_name, u.role, u.scope, s.csrf from sessions s "
                "join users u using (username) "
                "where s.token_hash = ? and s.expires_at > ? and not u.disabled",
                [_digest(token), now().isoformat()],
            ).fetchone()
        if row is None:
            return None
        return User(row["username"], row["full_name"], row["role"], row["scope"]), row["csrf"]

    def record_upload(self, username: str, upload) -> None:
        with self.connect() as con:
            con.execute(
                "insert into uploads values (?, ?, ?, ?, ?, ?)",
                [
                    upload.upload_id,
                    username,
                    upload.unit_code,
                    upload.period,
                    upload.landing_name,
                    now().isoformat(),
                ],
            )

    def uploads(self, unit: str) -> list[sqlite3.Row]:
        with self.connect() as con:
            return con.execute(
                "select * from uploads where unit_code = ? order by received_at desc", [unit]
            ).fetchall()

    def logout(self, token: str) -> None:
        with self.connect() as con:
            con.execute("delete from sessions where token_hash = ?", [_digest(token)])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _checked_scope(role: str, scope: str | None) -> str | None:
    if role == "reader":
        return None
    code = normalise_unit_code(scope or "")
    if role == "operator":
        if code not in submitting_units():
            raise AccountError(f"an operator's unit is a registered submitting unit, not {scope}")
        return code
    regencies = {u[:5] for u in submitting_units()}
    if code != "64" and code not in regencies:
        raise AccountError(
            f"a walidata's region is a regency of Kalimantan Timur or 64, not {scope}"
        )
    return code


def read_password(path: Path | None) -> str:
    """The password from a file or standard input (first line), never from the command line."""
    import sys

    text = path.read_text() if path else sys.stdin.readline()
    return text.rstrip("\r\n")
