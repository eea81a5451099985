"""Sign-off decisions asked in the portal: written to the portal's database first, then taken by
one worker thread through ``forum.signoff.decide`` (the CLI's code path: the same rules, the
same append-only log). ``decide`` waits for the build file's lock, so a decision asked while a
night runs is recorded when the run lets go of the file; until then the page says so. A
request survives a restart of the portal: the worker takes up what is still waiting.
"""

from __future__ import annotations

import secrets
import threading

from orchestration.forum.signoff import SignoffError, decide
from orchestration.portal.accounts import Accounts, User, now
from orchestration.settings import Settings

WAIT_FOR_ANSWER = 3.0  # seconds the page waits for the decision before saying it is queued


class DecisionQueue:
    def __init__(self, settings: Settings, accounts: Accounts):
        self.settings, self.accounts = settings, accounts
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="signoff-decisions", daemon=True)
        self._thread.start()
        self._wake.set()  # what a previous portal left waiting

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def ask(self, user: User, action: str, region: str, period: str, note: str) -> str:
        """Queue one decision and wait a moment for it; returns its state."""
        request_id = secrets.token_hex(8)
        with self.accounts.connect() as con:
            con.execute(
                "insert into decisions values (?, ?, ?, ?, ?, ?, ?, 'waiting', null)",
                [
                    request_id,
                    user.username,
                    action,
                    region,
                    period[:7],
                    note[:2000],
                    now().isoformat(),
                ],
            )
        self.accounts.audit("decision_asked", user.username, f"{action} {region} {period[:7]}")
        self._wake.set()
        with self._done:
            self._done.wait_for(lambda: self._state(request_id) != "waiting", WAIT_FOR_ANSWER)
        return self._state(request_id)

    def _state(self, request_id: str) -> str:
        with self.accounts.connect() as con:
            return con.execute(
                "select state from decisions where request_id = ?", [request_id]
            ).fetchone()[0]

    def recent(self, regions: list[str], limit: int = 10) -> list[dict]:
        with self.accounts.connect() as con:
            marks = ", ".join("?" for _ in regions)
            return [
                dict(row)
                for row in con.execute(
                    f"select d.*, u.full_name from decisions d join users u using (username) "
                    f"where region_code in ({marks}) order by asked_at desc limit ?",
                    [*regions, limit],
                ).fetchall()
            ]

    def _work(self) -> None:
        while not self._stop:
            self._wake.wait(timeout=30)
            self._wake.clear()
            while not self._stop and (request := self._next()) is not None:
                self._take(request)

    def _next(self):
        with self.accounts.connect() as con:
            return con.execute(
                "select d.*, u.full_name from decisions d join users u using (username) "
                "where state = 'waiting' order by asked_at limit 1"
            ).fetchone()

    def _take(self, request) -> None:
        try:
            decision = decide(
                self.settings,
                request["action"],
                request["region_code"],
                request["period"],
                request["full_name"],
                request["note"] or None,
            )
            state, outcome = "recorded", f"decision {decision.decision_id[:12]}"
        except SignoffError as exc:
            state, outcome = "refused", f"{exc.indonesian} / {exc.english}"
        except Exception as exc:  # the machine, not the request: said, and never retried silently
            state, outcome = "refused", f"error: {type(exc).__name__}: {str(exc)[:300]}"
        with self.accounts.connect() as con:
            con.execute(
                "update decisions set state = ?, outcome = ? where request_id = ?",
                [state, outcome, request["request_id"]],
            )
        self.accounts.audit(
            f"decision_{state}",
            request["username"],
            f"{request['action']} {request['region_code']} {request['period']}: {outcome}"[:500],
        )
        with self._done:
            self._done.notify_all()
