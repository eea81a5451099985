"""``satudata``: demo data, one pipeline run, status."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import sys
import warnings
from pathlib import Path

import duckdb

from orchestration.faults import machine_fault
from orchestration.pages import when
from orchestration.settings import Settings

DAGSTER_YAML = """\
# Written by satudata. One writer of build.duckdb at a time: runs queue one by one.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 1
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
telemetry:
  enabled: false
"""


def _dagster_instance(settings: Settings):
    import dagster as dg

    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def cmd_demo_data(args: argparse.Namespace) -> int:
    from orchestration.demo import write_demo

    settings = Settings.from_env().ensure()
    received = settings.archive / "submissions"
    if args.if_empty and (
        any(not p.name.startswith(".") for p in settings.landing.iterdir())
        or (received.exists() and any(received.iterdir()))
    ):
        print(
            f"{settings.landing} is not empty or submissions were already received: no demo data written."
        )
        return 0
    written = write_demo(settings.landing, args.scale, args.period)
    print(f"Wrote {len(written)} demo submissions (scale {args.scale}) to {settings.landing}")
    return 0


def _print_register(settings: Settings) -> None:
    if not settings.build_db.exists():
        print("No build warehouse yet.")
        return
    try:
        con = duckdb.connect(str(settings.build_db), read_only=True)
    except duckdb.Error as exc:
        print(f"The build warehouse {settings.build_db} cannot be read: {exc}")
        return
    with con:
        rows = con.execute(
            """
            select unit_code, period, status, households_accepted, members_accepted,
                   receipts_accepted, rows_rejected, coalesce(reason_code, '')
            from raw.submissions
            order by period desc, unit_code, submitted_at
            """
        ).fetchall()
    print(
        f"{'unit':<10} {'period':<8} {'status':<12} {'households':>10} {'members':>9} "
        f"{'receipts':>9} {'rejected':>9}  reason"
    )
    for unit, period, status, hh, mem, rec, rej, reason in rows:
        print(
            f"{unit or '?':<10} {period or '?':<8} {status:<12} {hh or 0:>10} {mem or 0:>9} "
            f"{rec or 0:>9} {rej or 0:>9}  {reason}"
        )


def cmd_prepare(args: argparse.Namespace) -> int:
    from orchestration.defs.dbt_project import prepare

    print(f"dbt manifest: {prepare()}")
    _dagster_instance(Settings.from_env().ensure())  # writes dagster.yaml for `make dev`
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.full_refresh and args.job != "nightly":
        print("--full-refresh builds the warehouse: only with --job nightly.", file=sys.stderr)
        return 2
    from orchestration.defs.definitions import defs
    from orchestration.defs.runs import PID_TAG, describe, fail_dead_runs

    settings = Settings.from_env().ensure()
    os.environ["SATUDATA_HOME"] = str(settings.home)
    instance = _dagster_instance(settings)
    for run_id in fail_dead_runs(instance):
        print(f"Marked run {run_id} as failed: its process had died.")
    job = defs().resolve_job_def(args.job)
    level = "INFO" if args.verbose else "WARNING"
    run_config: dict = {"loggers": {"console": {"config": {"log_level": level}}}}
    if args.full_refresh:
        run_config["ops"] = {"warehouse_models": {"config": {"full_refresh": True}}}
    # dbt's and the steps' own output goes to a log file unless -v: the terminal gets the summary
    output = settings.home / "logs" / "last-run.log"
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.nullcontext(sys.stdout) if args.verbose else open(output, "w") as out,
        contextlib.redirect_stdout(out),
    ):
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={PID_TAG: str(os.getpid())},
            run_config=run_config,
        )
    _print_register(settings)
    if not result.success:
        summary = describe(instance, instance.get_run_by_id(result.run_id))
        if summary.blocking_checks:
            print("Publication BLOCKED by failing checks:", file=sys.stderr)
            for check in summary.blocking_checks:
                print(f"  - {check}", file=sys.stderr)
                for line in summary.check_details.get(check, [])[:24]:
                    print(f"      {line[:300]}", file=sys.stderr)
        for message in summary.failures:
            print(f"FAILED {message.splitlines()[0][:300]}", file=sys.stderr)
        print(
            f"Run {result.run_id} failed; the previous publication stays in place.", file=sys.stderr
        )
        if not args.verbose:
            print(f"dbt's and the steps' output: {output}", file=sys.stderr)
        _mail_failure(settings, instance, result.run_id, summary)
        return 1
    _print_publication(settings)
    print(f"Run {result.run_id} succeeded.")
    return 0


def _mail_failure(settings: Settings, instance, run_id: str, summary) -> None:
    """Without a daemon (whose sensor mails every failed run) ``satudata run`` mails its own."""
    from orchestration.defs.alerts import daemon_watches, failure_message, send

    if settings.alerts is None or daemon_watches(instance):
        return
    run = instance.get_run_by_id(run_id)
    try:
        send(
            settings.alerts,
            failure_message(settings.alerts, run.job_name, run_id, summary, settings.ui_url),
        )
        print(f"Mailed to {', '.join(settings.alerts.recipients)}.", file=sys.stderr)
    except OSError as exc:
        print(f"The alert could not be mailed: {exc}", file=sys.stderr)


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """(A publication made before the forum's sign-off has no approval columns.)"""
    return con.execute(
        "select count(*) > 0 from duckdb_columns() where table_name = ? and column_name = ?",
        [table, column],
    ).fetchone()[0]


def _print_publication(settings: Settings) -> None:
    from orchestration.publication.publish import current_id

    if not settings.published_db.exists():
        print("Nothing published yet.")
        return
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        published_at, periods = con.execute(
            "select published_at, periods from publication_log order by published_at desc limit 1"
        ).fetchone()
        signed_off = _has_column(con, "fct_poverty", "approval_status")
        rows = con.execute(
            f"""
            select p.region_code, r.region_name, p.period, p.households, p.population, p.poverty_rate,
                   p.reporting_units, p.expected_units,
                   {"p.approval_status" if signed_off else "'provisional'"} as approval
            from fct_poverty p join dim_region r using (region_code)
            where p.level in ('regency', 'province') and p.period = (select max(period) from fct_poverty)
            order by p.region_code
            """
        ).fetchall()
    age = dt.datetime.now(dt.UTC) - published_at
    print(
        f"\nPublished {current_id(settings)} at {when(published_at)} "
        f"({age.total_seconds() / 3600:.1f} h ago), periods {periods}:"
    )
    print(
        f"{'region':<7} {'name':<30} {'period':<8} {'households':>10} {'population':>10} {'P0 %':>6}"
        " units  status"
    )
    for code, name, period, hh, pop, p0, rep, exp, approval in rows:
        print(
            f"{code:<7} {name[:30]:<30} {period:<8} {hh:>10} {pop:>10} {p0:>6.2f} "
            f"{f'{rep}/{exp}':<6} {approval}"
        )
    if rows:
        _print_not_covered(settings, rows[0][2])
    print(f"\nQuery it read-only:  duckdb -readonly {settings.published_db}")
    print(
        f"  or from Python:     python -c \"import duckdb; print(duckdb.connect('{settings.published_db}', "
        f"read_only=True).sql('from fct_poverty limit 5'))\""
    )
    print(f"Parquet copies:      {settings.warehouse / 'published'}/")
    bulletin = settings.warehouse / "bulletin.html"
    if bulletin.exists():
        print(f"Bulletin:            {bulletin.resolve().as_uri()}")


def _print_not_covered(settings: Settings, period: str) -> None:
    """Which units the figures above leave out, and why (``publication/coverage.py``)."""
    from orchestration.publication.coverage import expected_units

    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        units = expected_units(con, "64", period)
    missing = [u for u in units if not u["covered"]]
    print(f"Units in these figures: {len(units) - len(missing)} of {len(units)}.")
    for unit in missing:
        print(f"  left out: {unit['unit_code']} {unit['unit_name']}: {unit['why'][1]}")


def cmd_status(args: argparse.Namespace) -> int:
    from orchestration.defs.runs import describe, last_run

    settings = Settings.from_env()
    print(f"SATUDATA_HOME: {settings.home}")
    try:
        instance = _dagster_instance(settings)
        run = last_run(instance)
        summary = describe(instance, run) if run is not None else None
    except Exception as exc:  # what was published is still worth saying
        fault = machine_fault(exc, settings.home)
        if fault is None:
            raise
        print(f"Dagster's run storage cannot be read: {fault.english}")
        run = None
    if run is not None:
        print(
            f"Last run {run.run_id} ({run.job_name}, {summary.launched_by}) {summary.state}"
            f" at {when(summary.finished_at)}"
        )
        for check in summary.blocking_checks:
            print(f"  blocked by {check}")
        for message in summary.failures:
            print("  " + message.splitlines()[0][:300])
    _print_publication(settings)
    if settings.published_db.exists():
        with duckdb.connect(str(settings.published_db), read_only=True) as con:
            confirmed = (
                "'confirmed by ' || confirmed_by"
                if _has_column(con, "fct_submission_status", "confirmed_by")
                else "null"
            )
            rows = con.execute(
                "select unit_code, period, status, households_accepted, rows_rejected, "
                f"coalesce(reason, {confirmed}, '') from fct_submission_status "
                "where period = (select max(period) from fct_submission_status) "
                "order by unit_code, status"
            ).fetchall()
        print("\nSubmission status of the latest period:")
        for unit, period, status, hh, rejected, reason in rows:
            print(
                f"  {unit:<9} {period} {status:<12} {hh:>8} households {rejected:>6} rejected  {reason[:60]}"
            )
        review = settings.reports / "review"
        for index in sorted(review.glob("*/index.html"))[-1:]:
            print(f"\nReview pages for the forum: {index}")
        _print_signoff_log(settings)
    else:
        _print_register(settings)
    return 0


def cmd_signoff(args: argparse.Namespace) -> int:
    """confirm / withdraw / approve / unlock: one decision of the Forum Satu Data."""
    from orchestration.forum.signoff import SignoffError, decide

    settings = Settings.from_env()
    try:
        decision = decide(
            settings, args.command, args.region, args.period, args.by, args.note or args.reason
        )
    except SignoffError as exc:
        print(f"Ditolak: {exc.indonesian}\nRefused: {exc.english}", file=sys.stderr)
        return 2
    print(
        f"Recorded {decision.action} of {decision.region_code} {decision.period} by "
        f"{decision.decided_by} at {when(decision.decided_at)} "
        f"(decision {decision.decision_id[:12]})."
    )
    if decision.figures_digest:
        print(f"  figures {decision.figures_digest[:16]}… of publication {decision.publication_id}")
    if decision.submission_ids:
        print(f"  submissions: {', '.join(s[:12] for s in decision.submission_ids)}")
    print(
        "The published warehouse shows it from the next run (satudata run, or the nightly "
        "schedule)."
    )
    return 0


def _print_signoff_log(settings: Settings) -> None:
    """The sign-off log's size, and whether it is intact (``signoff.verify_log``)."""
    from orchestration.forum.signoff import verify_log

    try:
        con = duckdb.connect(str(settings.build_db), read_only=True)
    except duckdb.Error:
        return  # a run is writing the build file: the log is checked another time
    with con:
        if not con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'raw' "
            "and table_name = 'signoffs'"
        ).fetchone()[0]:
            return
        (count,) = con.execute("select count(*) from raw.signoffs").fetchone()
        problems = verify_log(con)
    print(f"Sign-off log: {count} decisions, " + ("intact." if not problems else "NOT INTACT:"))
    for problem in problems:
        print(f"  {problem}")
    if problems:
        print(
            "  No decision can be recorded, and the night publishes no approval (every figure "
            "provisional), until the log is restored from a backup (docs/operations.md).\n"
            "  Tidak ada keputusan baru, dan tidak ada persetujuan yang diterbitkan (semua angka "
            "sementara), sampai log dipulihkan dari cadangan."
        )


def cmd_rollback(args: argparse.Namespace) -> int:
    from orchestration.publication.publish import rollback

    settings = Settings.from_env()
    restored = rollback(settings)
    print(f"Restored publication {restored} as {settings.published_db}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from orchestration.backup import BackupError, backup, restore

    settings = Settings.from_env()
    try:
        if args.command == "backup":
            about = backup(settings, args.folder.resolve())
            print(f"Backed up {settings.home} to {args.folder} ({about['bytes'] / 1e6:.1f} MB, "
                  f"publication {about['publication']}).")  # fmt: skip
        else:
            about = restore(settings, args.folder.resolve())
            print(f"Restored the backup of {about['created_at']} (publication "
                  f"{about['publication']}) into {settings.home}. Run `satudata prepare`.")  # fmt: skip
    except BackupError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 2
    print(f"Pseudonym key: {about['pseudonym_key']}")
    print(f"Dagster's storage: {about['dagster_storage']}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from orchestration.portal.app import create_app

    settings = Settings.from_env().ensure()
    print(f"Satu Data portal on http://{args.host}:{args.port}/ (SATUDATA_HOME {settings.home})")
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        proxy_headers=True,  # the scheme (https) from the reverse proxy on this machine
        log_level="info" if args.verbose else "warning",
    )
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    import getpass

    from orchestration.portal.accounts import AccountError, Accounts, read_password

    accounts = Accounts(Settings.from_env().ensure())
    try:
        if args.action == "add":
            if args.password_file or not sys.stdin.isatty():
                password = read_password(args.password_file)
            else:
                password = getpass.getpass("Password: ")
            accounts.add(args.username, args.name, args.role, args.scope, password)
            print(f"Added {args.username} ({args.role} {args.scope or ''}).")
        elif args.action == "disable":
            accounts.disable(args.username)
            print(f"Disabled {args.username}; their sessions are ended.")
        else:
            for row in accounts.list():
                state = "disabled" if row["disabled"] else "active"
                print(
                    f"{row['username']:<20} {row['role']:<9} {row['scope'] or '':<9} {state:<8} {row['full_name']}"
                )
    except AccountError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="satudata", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    common = argparse.ArgumentParser(add_help=False)  # -v after the subcommand too
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo-data", parents=[common], help="write demo submissions into landing/"
    )
    demo.add_argument("--scale", choices=["bontang", "kaltim"], default="bontang")
    demo.add_argument("--period", help="YYYY-MM (default: last month)")
    demo.add_argument(
        "--if-empty",
        action="store_true",
        help="only when landing/ is empty and nothing was received yet",
    )
    demo.set_defaults(func=cmd_demo_data)
    run = sub.add_parser("run", parents=[common], help="run the pipeline once, in this process")
    run.add_argument("--job", default="nightly", choices=["nightly", "ingest"])
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the incremental dbt models in full (after changing a macro they call)",
    )
    run.set_defaults(func=cmd_run)
    roll = sub.add_parser(
        "rollback", parents=[common], help="put the previous publication back in place"
    )
    roll.set_defaults(func=cmd_rollback)
    prepare = sub.add_parser(
        "prepare", parents=[common], help="parse the dbt project (writes its manifest)"
    )
    prepare.set_defaults(func=cmd_prepare)
    for name, what, reason in (
        (
            "confirm",
            "a unit's operator confirms its submission for a period (validasi selesai)",
            False,
        ),
        ("withdraw", "take a unit's confirmation back, with a reason", True),
        (
            "approve",
            "the walidata approves a regency's or the province's figures and locks them",
            False,
        ),
        (
            "unlock",
            "the walidata lifts an approval, with a reason: pending revisions go through",
            True,
        ),
    ):
        decision = sub.add_parser(name, parents=[common], help=what, description=what)
        decision.add_argument(
            "region",
            help="the submitting unit (confirm, withdraw) or the region (approve, unlock), "
            "e.g. 64.74.01 or 64.74",
        )
        decision.add_argument("period", help="YYYY-MM")
        decision.add_argument("--by", required=True, help="who decides: name and office")
        if reason:
            decision.add_argument("--reason", required=True, help="why (recorded, published)")
            decision.set_defaults(note=None)
        else:
            decision.add_argument("--note", help="a note, recorded with the decision")
            decision.set_defaults(reason=None)
        decision.set_defaults(func=cmd_signoff)
    status = sub.add_parser("status", parents=[common], help="what was received and published")
    status.set_defaults(func=cmd_status)
    for name, what in (
        ("backup", "copy the whole data root, consistent, into a new folder"),
        ("restore", "copy a backup into an empty data root (SATUDATA_HOME)"),
    ):
        command = sub.add_parser(name, parents=[common], help=what, description=what)
        command.add_argument("folder", type=Path)
        command.set_defaults(func=cmd_backup)
    serve = sub.add_parser(
        "serve", parents=[common], help="serve the portal (the forum's web pages)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(func=cmd_serve)
    user = sub.add_parser("user", parents=[common], help="the portal's people: add, disable, list")
    user_sub = user.add_subparsers(dest="action", required=True)
    add = user_sub.add_parser(
        "add", help="add a person (the password is read from stdin or a file)"
    )
    add.add_argument("username")
    add.add_argument("--name", required=True, help="full name and office, as recorded in decisions")
    add.add_argument("--role", required=True, choices=["operator", "walidata", "reader"])
    add.add_argument("--scope", help="operator: the unit (64.74.01); walidata: the regency or 64")
    add.add_argument("--password-file", type=Path, help="read the password from this file")
    user_sub.add_parser("disable", help="disable a person and end their sessions").add_argument(
        "username"
    )
    user_sub.add_parser("list", help="everyone, with role and unit")
    user.set_defaults(func=cmd_user)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # quiet unless -v: warnings of the libraries (beta notices) and their INFO and DEBUG lines
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if args.verbose:
        logging.getLogger("orchestration").setLevel(logging.INFO)
    else:
        warnings.filterwarnings("ignore", message=".*is currently in beta")
    try:
        return args.func(args)
    except Exception as exc:
        fault = machine_fault(exc, Settings.from_env().home)
        if fault is None:
            raise
        print(f"Berhenti: {fault.indonesian}\nStopped: {fault.english}", file=sys.stderr)
        if args.command == "run":
            print("The previous publication stays in place.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
