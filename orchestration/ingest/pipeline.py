"""Ingestion: every ready submission of ``landing/``, stage by stage, into the build file.

For each entry, top to bottom (each step in the module of its stage):

1. ``landing.check_no_links``: symbolic links are never followed; then
   ``archive.archive_submission``: every byte archived by SHA-256 (the same bytes again are a
   duplicate and change nothing);
2. ``read.unpack`` / ``read.read_manifest``: the files (a zip extracted, within limits) and the
   manifest;
3. ``contract.parse_manifest``: the manifest's rules;
4. ``read.read_tables``: the three tables as text, in DuckDB;
5. ``validate.validate``: every row judged; too many rejects quarantine the submission;
6. ``load.decide``: accepted, superseded, pending (its period is approved and locked) or
   quarantined;
7. ``report.write_submission_report``: the operator's bilingual report;
8. ``load.record``: written to the build file in one transaction (accepted rows
   pseudonymised);
9. ``landing.remove`` or ``landing.quarantine``: the entry leaves landing.

Anything in steps 1-5 that makes the submission untrustworthy is a ``QuarantineError``; any
other fault of one entry quarantines that entry (``INGEST_ERROR``) and the others go on. A fault
of the machine (a full disk, an I/O error, memory running out: ``faults.machine_fault``) is not
the entry's: the run stops with a ``MachineFault``, the entry stays in landing, and nothing of
it is recorded, so the next run takes it as if nothing had happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.faults import machine_fault
from orchestration.settings import Settings

from . import landing, load, read
from .archive import Received, archive_submission
from .contract import TABLES, QuarantineError, parse_manifest
from .load import Pseudonymiser
from .report import copy_report, install_reasons, write_submission_report
from .store import build_lock, connect_build, install_reference, submitting_units
from .submission import Submission
from .validate import validate

log = logging.getLogger(__name__)
QUARANTINE_REPORT = "laporan_validasi_validation_report"


@dataclass
class Outcome:
    submission_id: str
    landing_name: str
    status: str  # accepted | superseded | pending | quarantined | duplicate
    unit_code: str | None = None
    period: str | None = None
    reason_code: str | None = None
    detail: str | None = None
    counts: dict = field(default_factory=dict)
    rows_rejected: int = 0
    report_path: str | None = None


class _ArrivalOrder:
    """Submissions of one unit and period are decided and loaded in arrival order.

    Whether a submission is accepted or superseded depends on the one accepted before it for
    the same unit and period, so two of those must not be loaded at once, nor out of order
    (on equal ``dikirim_pada`` the first to arrive stays accepted). Positions are handed to the
    workers in arrival order, so every earlier one has started: waiting cannot deadlock.
    """

    _NOBODY = object()

    def __init__(self, size: int):
        self._keys: list[object] = [None] * size  # (unit, period) once known
        self._done = [False] * size
        self._cond = threading.Condition()

    def known(self, position: int, key: tuple[str, str] | None) -> None:
        with self._cond:
            if self._keys[position] is None:
                self._keys[position] = key if key is not None else self._NOBODY
                self._cond.notify_all()

    def finished(self, position: int) -> None:
        with self._cond:
            self._done[position] = True
            if self._keys[position] is None:
                self._keys[position] = self._NOBODY
            self._cond.notify_all()

    def wait_turn(self, position: int) -> None:
        key = self._keys[position]

        def earlier_are_out_of_the_way() -> bool:
            return all(
                self._keys[k] is not None and (self._keys[k] != key or self._done[k])
                for k in range(position)
            )

        with self._cond:
            self._cond.wait_for(earlier_are_out_of_the_way)


class Ingestor:
    """Ingests the ready submissions of ``landing/`` into ``warehouse/build.duckdb``."""

    def __init__(self, settings: Settings, now: dt.datetime | None = None):
        self.settings = settings.ensure()
        self.now = now
        self.units = submitting_units()

    def run(self) -> list[Outcome]:
        """Every ready submission, two at a time (``SATUDATA_INGEST_WORKERS``).

        Each is archived here, in arrival order, while the workers read, validate and load the
        ones archived before it, each on a connection of its own. Submissions of one unit and
        period are decided and loaded in the order they arrived (``_ArrivalOrder``), exactly as
        one at a time would be.
        """
        with build_lock(self.settings):
            for stale in self._tmp().glob("ingest-*"):  # left by a run that was killed
                shutil.rmtree(stale, ignore_errors=True)
            try:
                con = connect_build(self.settings)
            except Exception as exc:
                self._raise_if_machine(exc)
                raise
            with con:
                self.pseudo = Pseudonymiser(load.checked_key(con, self.settings))
                return self._run(con)

    def _run(self, con: duckdb.DuckDBPyConnection) -> list[Outcome]:
        entries = landing.discover(self.settings.landing)
        outcomes: list[Outcome | None] = [None] * len(entries)
        order = _ArrivalOrder(len(entries))  # positions: the entries' arrival order
        local = threading.local()
        cursors: list[duckdb.DuckDBPyConnection] = []
        futures: dict[int, Future] = {}
        first_copy: set[str] = set()
        repeated: list[tuple[int, Received]] = []

        def one(position: int, received: Received) -> Outcome:
            if not hasattr(local, "con"):
                local.con = con.cursor()  # temp tables and macros are per connection
                cursors.append(local.con)
                install_reference(local.con)
                install_reasons(local.con)
            try:
                return self.ingest(local.con, received, order, position)
            finally:
                order.finished(position)

        pool = ThreadPoolExecutor(min(self.settings.ingest_workers, max(1, len(entries))))
        try:
            # archived here, in arrival order, while the workers ingest the ones before
            for index, entry in enumerate(entries):
                if any(f.done() and f.exception() for f in futures.values()):
                    break  # stop as one at a time would
                received = self._archive(con, entry, index, outcomes)
                if received is None:
                    order.finished(index)
                elif received.submission_id in first_copy:
                    order.finished(index)
                    repeated.append((index, received))  # the same bytes twice: see below
                else:
                    first_copy.add(received.submission_id)
                    futures[index] = pool.submit(one, index, received)
            for future in as_completed(futures.values()):
                if future.exception() is not None:
                    break
        finally:
            for index, future in futures.items():  # after a failure: what has not started
                if future.cancel():
                    order.finished(index)
            pool.shutdown(wait=True)
            for cursor in cursors:
                cursor.close()
        done = [(i, f) for i, f in futures.items() if not f.cancelled()]
        errors = [f.exception() for _, f in done if f.exception()]
        if errors:
            raise errors[0]
        for index, future in done:
            outcomes[index] = future.result()
        # a second copy of bytes that arrived twice in one batch: the first is in the register now
        for index, received in repeated:
            outcomes[index] = self._duplicate(con, received)
        return [o for o in outcomes if o is not None]

    def _archive(
        self,
        con: duckdb.DuckDBPyConnection,
        entry: Path,
        index: int,
        outcomes: list[Outcome | None],
    ) -> Received | None:
        """The entry archived, or None when it is already decided: refused (its outcome
        recorded) or received before (a duplicate)."""
        now = self.now or dt.datetime.now(dt.UTC)
        try:
            landing.check_no_links(entry)
            received = archive_submission(entry, self.settings.archive, now)
        except Exception as exc:  # noqa: BLE001 - a fault of one entry is that entry's alone
            self._raise_if_machine(exc)
            outcomes[index] = self._refuse(con, entry, now, exc)
            return None
        outcomes[index] = self._duplicate(con, received)
        if outcomes[index] is not None:
            return None
        return received

    def _duplicate(self, con: duckdb.DuckDBPyConnection, received: Received) -> Outcome | None:
        """The outcome of a submission already in the register, or None."""
        sid, entry = received.submission_id, received.entry
        known = con.execute(
            "select status, report_path from raw.submissions where submission_id = ?", [sid]
        ).fetchone()
        if not known:
            return None
        status, report = known
        name = landing.display_name(entry.name)
        log.info("%s: already received as %s (%s); nothing to do", name, sid[:12], status)
        if status == "quarantined":  # (also finishes a quarantine that a killed run began)
            folder = self.settings.quarantine / Path(report).stem
            landing.quarantine(entry, folder)
            if Path(report).exists():
                copy_report(Path(report), folder, QUARANTINE_REPORT)
        else:
            landing.remove(entry)
        return Outcome(sid, name, "duplicate")

    # -- one submission ---------------------------------------------------------------------
    def ingest(
        self,
        con: duckdb.DuckDBPyConnection,
        received: Received,
        order: _ArrivalOrder,
        position: int,
    ) -> Outcome:
        """One archived submission, through every stage after the archive. Whatever goes wrong
        with it, it is quarantined with its report: the other submissions go on."""
        sub = Submission(received)
        with tempfile.TemporaryDirectory(prefix="ingest-", dir=self._tmp()) as workdir:
            try:
                try:
                    folder = read.unpack(received, Path(workdir), self.settings.zip_limits)
                    sub.manifest_raw = read.read_manifest(folder)
                    sub.manifest = parse_manifest(
                        sub.manifest_raw, self.units, received.received_at
                    )
                    order.known(position, (sub.manifest.unit_code, sub.manifest.period))
                    sub.sources = read.read_tables(con, folder, Path(workdir))
                    sub.counts = validate(con, sub.manifest, sub.sources)
                except QuarantineError as exc:
                    sub.quarantine, sub.counts = exc, exc.counts
                order.known(position, None)  # no unit and period: nobody waits on it
                if not sub.quarantine:
                    order.wait_turn(position)  # decided after earlier ones of its unit and period
                return self._conclude(con, sub)
            except Exception as exc:  # noqa: BLE001 - a fault of one entry is that entry's alone
                self._raise_if_machine(exc)
                log.exception("%s could not be ingested", sub.landing_name)
                order.known(position, None)
                failed = Submission(received, sub.manifest_raw, sub.manifest)
                failed.quarantine = _ingest_error(exc)
                return self._conclude(con, failed)
            finally:
                _drop_working_tables(con)

    def _refuse(
        self, con: duckdb.DuckDBPyConnection, entry: Path, now: dt.datetime, error: Exception
    ) -> Outcome:
        """An entry that could not even be archived (a symbolic link, an unreadable file):
        quarantined as it is, with its report, under an id of its name and time of receipt."""
        if not isinstance(error, QuarantineError):
            log.error("%s could not be archived: %s", landing.display_name(entry.name), error)
        key = b"\0".join([b"not archived", os.fsencode(entry.name), now.isoformat().encode()])
        received = Received(entry, hashlib.sha256(key).hexdigest(), now)
        sub = Submission(received)
        sub.quarantine = error if isinstance(error, QuarantineError) else _ingest_error(error)
        return self._conclude(con, sub)

    def _conclude(self, con: duckdb.DuckDBPyConnection, sub: Submission) -> Outcome:
        """Decide, report, record, leave landing: in this order, so that a run killed anywhere
        leaves either no register row (the next run does it all again) or a register row and
        its report (the next run finishes moving the files, see ``_duplicate``)."""
        if sub.quarantine:
            sub.status = "quarantined"
        else:
            sub.status, sub.replaces, sub.replaced_by, sub.held_by = load.decide(con, sub.manifest)
        unit_name = self.units.get(sub.unit_code or "")
        if sub.counts:
            load.pseudonymise_rejects(con, self.pseudo)
        report = write_submission_report(con, sub, self.settings.reports, unit_name)
        load.record(con, sub, self.pseudo, str(report))
        self._leave_landing(sub, report)
        return Outcome(
            sub.submission_id,
            sub.landing_name,
            sub.status,
            sub.unit_code,
            sub.period,
            sub.quarantine.cause if sub.quarantine else None,
            sub.quarantine.detail if sub.quarantine else None,
            sub.counts,
            sub.rows_rejected,
            str(report),
        )

    def _leave_landing(self, sub: Submission, report: Path) -> None:
        entry = sub.received.entry
        if sub.status == "quarantined":
            folder = self.settings.quarantine / sub.label
            landing.quarantine(entry, folder)
            copy_report(report, folder, QUARANTINE_REPORT)
            log.warning(
                "%s: quarantined (%s) %s",
                sub.landing_name,
                sub.quarantine.cause,
                sub.quarantine.detail,
            )
        else:
            landing.remove(entry)
            log.info(
                "%s: %s, unit %s period %s, %d rows rejected",
                sub.landing_name,
                sub.status,
                sub.unit_code,
                sub.period,
                sub.rows_rejected,
            )

    def _raise_if_machine(self, exc: Exception) -> None:
        fault = machine_fault(exc, self.settings.home)
        if fault is not None:
            raise fault from exc

    def _tmp(self) -> Path:
        path = self.settings.home / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path


def _ingest_error(exc: Exception) -> QuarantineError:
    first_line = (str(exc).strip().splitlines() or [""])[0][:500]
    return QuarantineError("INGEST_ERROR", f"{type(exc).__name__}: {first_line}")


def _drop_working_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The temporary views and tables one submission left on its connection (none to drop on
    a connection that a fault of the machine closed: its error is the one that counts)."""
    with contextlib.suppress(duckdb.Error):
        for table in TABLES:
            con.execute(f"drop view if exists src_{table}")
        for name in (
            "rejects",
            "listed",
            "kk_keys",
            *(f"{p}_{t}" for p in ("raw_src", "chk") for t in TABLES),
        ):
            con.execute(f"drop table if exists {name}")
