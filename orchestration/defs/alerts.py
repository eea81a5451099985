"""An e-mail to the engineers when a night fails, through the SMTP server named in settings.

Off unless ``SATUDATA_ALERT_SMTP_HOST`` is set. The message says, in Indonesian and English,
which run failed, which step and with what error, and which checks blocked the publication.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from email.message import EmailMessage

from orchestration.defs.runs import RunSummary
from orchestration.pages import when
from orchestration.settings import AlertSettings


def failure_message(
    settings: AlertSettings, job: str, run_id: str, summary: RunSummary, ui_url: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[satudata] {job} gagal / failed ({run_id[:8]})"
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    lines = [
        f"Run {run_id} ({job}, {summary.launched_by}) gagal pada / failed at "
        f"{when(summary.finished_at)}.",
        "Publikasi sebelumnya tetap berlaku. / The previous publication stays in place.",
        "",
    ]
    if summary.blocking_checks:
        lines.append("Pemeriksaan yang memblokir / Checks that blocked the publication:")
        for check in summary.blocking_checks:
            lines.append(f"  - {check}")
            lines += [f"      {line[:600]}" for line in summary.check_details.get(check, [])]
        lines.append("")
    if summary.failures:
        lines.append("Langkah yang gagal / Failed steps:")
        for failure in summary.failures:  # the step, then what broke, a line each (up to ten)
            first, *rest = failure.splitlines() or [""]
            lines.append(f"  - {first[:600]}")
            lines += [f"      {line[:600]}" for line in rest[:10]]
        lines.append("")
    if ui_url:
        lines.append(f"Dagster: {ui_url.rstrip('/')}/runs/{run_id}")
    lines.append("Lihat / See: satudata status, docs/operations.md")
    message.set_content("\n".join(lines))
    return message


def daemon_watches(instance) -> bool:
    """Whether a Dagster daemon beat in the last two minutes: its sensor then mails every
    failed run, including those of ``satudata run``."""
    beats = instance.get_daemon_heartbeats()
    newest = max((b.timestamp for b in beats.values()), default=0)
    return dt.datetime.now(dt.UTC).timestamp() - newest < 120


def send(settings: AlertSettings, message: EmailMessage) -> None:
    with smtplib.SMTP(settings.host, settings.port, timeout=30) as server:
        if settings.starttls:
            server.starttls()
        if settings.user:
            server.login(settings.user, settings.password or "")
        server.send_message(message)
