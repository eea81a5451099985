"""``satudata``: demo data, one pipeline run, status."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import duckdb

from .settings import Settings


def _dagster_instance(settings: Settings):
    import dagster as dg

    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def cmd_demo_data(args: argparse.Namespace) -> int:
    from .demo import write_demo

    settings = Settings.from_env().ensure()
    if args.if_empty and any(not p.name.startswith(".") for p in settings.landing.iterdir()):
        print(f"{settings.landing} is not empty: no demo data written.")
        return 0
    written = write_demo(settings.landing, args.scale, args.period)
    print(f"Wrote {len(written)} demo submissions (scale {args.scale}) to {settings.landing}")
    return 0


def _print_register(settings: Settings) -> None:
    if not settings.build_db.exists():
        print("No build warehouse yet.")
        return
    con = duckdb.connect(str(settings.build_db), read_only=True)
    try:
        rows = con.execute(
            """
            select unit_code, period, status, households_accepted, members_accepted,
                   receipts_accepted, rows_rejected, coalesce(reason_code, '')
            from raw.submissions
            order by period desc, unit_code, submitted_at
            """
        ).fetchall()
    finally:
        con.close()
    print(f"{'unit':<10} {'period':<8} {'status':<12} {'households':>10} {'members':>9} "
          f"{'receipts':>9} {'rejected':>9}  reason")  # fmt: skip
    for unit, period, status, hh, mem, rec, rej, reason in rows:
        print(f"{unit or '?':<10} {period or '?':<8} {status:<12} {hh or 0:>10} {mem or 0:>9} "
              f"{rec or 0:>9} {rej or 0:>9}  {reason}")  # fmt: skip


def cmd_prepare(args: argparse.Namespace) -> int:
    from .dbt_project import prepare_manifest

    print(f"dbt manifest: {prepare_manifest(force=True)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .dbt_project import prepare_manifest

    settings = Settings.from_env().ensure()
    os.environ["SATUDATA_HOME"] = str(settings.home)
    prepare_manifest()
    from .definitions import defs

    instance = _dagster_instance(settings)
    job = defs.resolve_job_def(args.job)
    level = "INFO" if args.verbose else "WARNING"
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": level}}}},
    )
    _print_register(settings)
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.event_specific_data is not None:
                error = getattr(event.event_specific_data, "error", None)
                print(
                    f"FAILED {event.step_key or ''}: {error.message.strip() if error else event.message}"
                )
        print(f"Run {result.run_id} failed.", file=sys.stderr)
        return 1
    print(f"Run {result.run_id} succeeded.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    print(f"SATUDATA_HOME: {settings.home}")
    _print_register(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="satudata", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo-data", help="write demo submissions into landing/")
    demo.add_argument("--scale", choices=["bontang", "kaltim"], default="bontang")
    demo.add_argument("--period", help="YYYY-MM (default: last month)")
    demo.add_argument("--if-empty", action="store_true", help="only when landing/ is empty")
    demo.set_defaults(func=cmd_demo_data)
    run = sub.add_parser("run", help="run the pipeline once, in this process")
    run.add_argument("--job", default="nightly", choices=["nightly", "ingest"])
    run.set_defaults(func=cmd_run)
    prepare = sub.add_parser("prepare", help="parse the dbt project (writes its manifest)")
    prepare.set_defaults(func=cmd_prepare)
    status = sub.add_parser("status", help="what was received and published")
    status.set_defaults(func=cmd_status)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
