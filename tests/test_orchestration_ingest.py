"""The ingestion assets, the landing sensor, the demo data and the CLI, on a real Dagster instance."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from orchestration import cli
from orchestration.defs.definitions import defs
from orchestration.defs.sensors import landing_sensor
from orchestration.demo import households_per_unit, write_demo
from tests.submissions import register, write_submission


def test_landing_sensor_requests_a_run_only_for_complete_submissions(settings):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        write_submission(settings.landing, "uploading", register(), omit=("manifest.json",))
        assert isinstance(landing_sensor(context), dg.SkipReason)
        write_submission(settings.landing, "ready", register())
        request = landing_sensor(context)
        assert isinstance(request, dg.RunRequest)
        assert (
            request.job_name in (None, "ingest") and "ready" in request.tags["satudata/submissions"]
        )
        assert landing_sensor(context).run_key == request.run_key  # same files, same key


def test_ingest_job_materialises_the_raw_assets(settings):
    write_submission(settings.landing, "s", register())
    with dg.instance_for_test() as instance:
        result = defs().resolve_job_def("ingest").execute_in_process(instance=instance)
        assert result.success
        materialised = {
            m.asset_key.to_user_string()
            for m in result.asset_materializations_for_node("raw_submissions")
        }
        assert materialised == {
            "raw/submissions",
            "raw/households",
            "raw/members",
            "raw/receipts",
            "raw/rejects",
        }
    con = duckdb.connect(str(settings.build_db), read_only=True)
    assert con.execute("select count(*) from raw.households").fetchone() == (20,)


def test_demo_data_shows_every_path(settings):
    written = write_demo(settings.landing, "bontang", "2025-03")
    names = sorted(p.name for p in written)
    assert len(names) == len(households_per_unit("bontang")) + 1  # one unit sends a revision
    assert any(n.endswith(".zip") for n in names)
    assert list(settings.landing.glob("*/*.xlsx"))
    cp1252 = (settings.landing / "64.74.03_2025-03_r1" / "keluarga.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        cp1252.decode("utf-8")
    assert b";" in cp1252.splitlines()[0]
    from orchestration.ingest.pipeline import Ingestor

    outcomes = Ingestor(settings).run()
    assert all(o.rows_rejected > 0 for o in outcomes)  # every unit has a few bad rows
    con = duckdb.connect(str(settings.build_db), read_only=True)
    statuses = dict(
        con.execute("select status, count(*) from raw.submissions group by 1").fetchall()
    )
    assert statuses == {"accepted": len(outcomes) - 2, "superseded": 1, "quarantined": 1}


def test_satudata_run_prints_the_register_and_exits_zero(settings, capsys):
    write_submission(settings.landing, "s", register())
    write_submission(settings.landing, "bad", register(), {"kode_wilayah": "64.05", "periode": "2025-03",
                                                           "dikirim_pada": "2025-04-03T09:12:00+08:00"})  # fmt: skip
    assert cli.main(["run", "--job", "ingest"]) == 0
    out = capsys.readouterr().out
    assert "64.74.02" in out and "accepted" in out and "UNIT_NOT_REGISTERED" in out


def test_full_refresh_is_refused_for_the_ingest_job_before_anything_runs(settings, capsys):
    write_submission(settings.landing, "s", register())
    assert cli.main(["run", "--job", "ingest", "--full-refresh"]) == 2
    assert "only with --job nightly" in capsys.readouterr().err
    assert not settings.build_db.exists()  # nothing ingested
    assert not settings.dagster_home.exists()  # no run created


def test_definitions_hold_the_schedule_in_wita_and_the_sensor():
    schedule = defs().resolve_schedule_def("nightly_0200_wita")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "Asia/Makassar"
    assert defs().resolve_sensor_def("landing_sensor").job_name == "ingest"


def test_status_reads_the_last_run_from_dagsters_run_storage_whoever_started_it(settings, capsys):
    """A run started by the sensor, the schedule or the UI (not ``satudata run``) is what
    ``satudata status`` shows, failed or succeeded."""
    instance = cli._dagster_instance(settings)
    job = defs().resolve_job_def("ingest")
    write_submission(settings.landing, "s", register())
    settings.build_db.mkdir()  # not a DuckDB file: ingestion fails
    failed = job.execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/sensor_name": "landing_sensor"}
    )
    assert not failed.success
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"Last run {failed.run_id} (ingest, sensor landing_sensor) FAILED" in out
    assert "raw_submissions: _duckdb.IOException: IO Error" in out  # the step and its error
    settings.build_db.rmdir()
    succeeded = job.execute_in_process(instance=instance)  # as the UI launches it: no tags
    assert succeeded.success
    assert cli.main(["status"]) == 0
    assert f"Last run {succeeded.run_id} (ingest, Dagster UI) succeeded" in capsys.readouterr().out


def test_demo_data_if_empty_writes_only_before_anything_was_received(settings, ingest):
    assert cli.main(["demo-data", "--period", "2025-03", "--if-empty"]) == 0
    first = sorted(p.name for p in settings.landing.iterdir())
    assert len(first) == 13
    assert cli.main(["demo-data", "--period", "2025-03", "--if-empty"]) == 0  # landing not empty
    assert sorted(p.name for p in settings.landing.iterdir()) == first
    ingest()
    assert not list(settings.landing.iterdir())
    assert cli.main(["demo-data", "--period", "2025-03", "--if-empty"]) == 0  # already received
    assert not list(settings.landing.iterdir())
