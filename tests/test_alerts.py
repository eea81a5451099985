"""An e-mail when a night fails, received by a real SMTP server on this machine."""

from __future__ import annotations

import email
import shutil
import socket

import dagster as dg
import duckdb
import pytest
from aiosmtpd.controller import Controller

from orchestration import cli
from orchestration.defs.definitions import defs
from orchestration.defs.sensors import email_on_run_failure
from tests.submissions import register, write_submission


class Inbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        self.messages.append(email.message_from_bytes(envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def inbox():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    received = Inbox()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    received.port = port
    yield received
    controller.stop()


def _failed_run(settings):
    """A real failed run of the ingest job (the build file is not a DuckDB file)."""
    instance = cli._dagster_instance(settings)
    write_submission(settings.landing, "s", register())
    settings.build_db.mkdir()
    result = (
        defs().resolve_job_def("ingest").execute_in_process(instance=instance, raise_on_error=False)
    )
    assert not result.success
    return result, failure_context(instance, result)


def failure_context(instance, result):
    """The context the failure sensor gets for ``result``'s run."""
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    return dg.build_run_status_sensor_context(
        sensor_name="email_on_run_failure", dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=failure,
    ).for_run_failure()  # fmt: skip


def test_a_failed_run_is_mailed_to_the_smtp_server_in_settings(settings, inbox, monkeypatch):
    monkeypatch.setenv("SATUDATA_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SATUDATA_ALERT_SMTP_PORT", str(inbox.port))
    monkeypatch.setenv("SATUDATA_ALERT_TO", "bappeda@bontang.example, data@kaltim.example")
    monkeypatch.setenv("SATUDATA_UI_URL", "http://satudata.local:3000")
    result, context = _failed_run(settings)
    email_on_run_failure(context)
    [message] = inbox.messages
    assert inbox.recipients == [["bappeda@bontang.example", "data@kaltim.example"]]
    assert message["Subject"] == f"[satudata] ingest gagal / failed ({result.run_id[:8]})"
    body = message.get_payload()
    assert "raw_submissions: _duckdb.IOException" in body  # the failed step and its error
    assert "Publikasi sebelumnya tetap berlaku" in body and "previous publication" in body
    assert f"http://satudata.local:3000/runs/{result.run_id}" in body


def test_alerts_are_off_when_no_smtp_server_is_set(settings, inbox, monkeypatch):
    monkeypatch.delenv("SATUDATA_ALERT_SMTP_HOST", raising=False)
    _, context = _failed_run(settings)
    assert isinstance(email_on_run_failure(context), dg.SkipReason)
    assert inbox.messages == []


def test_the_alert_sensor_is_part_of_the_code_location_and_running():
    sensor = defs().resolve_sensor_def("email_on_run_failure")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_dbt_failure_is_mailed_with_the_model_and_its_database_error_in_wita(
    settings, inbox, monkeypatch
):
    """The raw table lost a column the warehouse reads (a schema drift): the e-mail names the
    step, the dbt model and DuckDB's error, without colour codes, at a WITA time."""
    monkeypatch.setenv("SATUDATA_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SATUDATA_ALERT_SMTP_PORT", str(inbox.port))
    monkeypatch.setenv("SATUDATA_ALERT_TO", "data@kaltim.example")
    instance = cli._dagster_instance(settings)
    write_submission(settings.landing, "s", register())
    assert defs().resolve_job_def("ingest").execute_in_process(instance=instance).success
    con = duckdb.connect(str(settings.build_db))
    con.execute("alter table raw.households drop column welfare_decile")
    con.close()
    result = (
        defs()
        .resolve_job_def("nightly")
        .execute_in_process(instance=instance, raise_on_error=False)
    )
    assert not result.success
    email_on_run_failure(failure_context(instance, result))
    [message] = inbox.messages
    body = message.get_payload(decode=True).decode()
    assert "warehouse_models: dbt model staging.stg_raw__households error:" in body, body
    assert "welfare_decile" in body and "Binder Error" in body, body
    assert "The dbt CLI process" not in body and "\x1b" not in body
    assert " WITA." in body and " UTC" not in body


def test_a_blocking_check_is_mailed_with_its_rule_and_the_rows_that_break_it(
    settings, inbox, monkeypatch, tmp_path
):
    """A GX rule fails: the e-mail names the check, the rule as a person reads it and the
    first rows that break it with their region, level and period."""
    import json

    from orchestration.checks import expectations

    monkeypatch.setenv("SATUDATA_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SATUDATA_ALERT_SMTP_PORT", str(inbox.port))
    monkeypatch.setenv("SATUDATA_ALERT_TO", "data@kaltim.example")
    suites = tmp_path / "suites"
    shutil.copytree(expectations.SUITES_DIR, suites)
    poverty = json.loads((suites / "fct_poverty.json").read_text())
    poverty["expectations"].append(
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "poverty_rate", "max_value": 0.001},
            "meta": {"severity": "ERROR", "notes": "an impossible bound, for this test"},
        }
    )
    (suites / "fct_poverty.json").write_text(json.dumps(poverty))
    monkeypatch.setattr(expectations, "SUITES_DIR", suites)
    instance = cli._dagster_instance(settings)
    write_submission(settings.landing, "s", register())
    result = (
        defs()
        .resolve_job_def("nightly")
        .execute_in_process(instance=instance, raise_on_error=False)
    )
    assert not result.success
    # in Dagster: the failing rows with their keys; warnings in checks of their own, not blocking
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    poverty = evaluations["gx_fct_poverty"]
    assert not poverty.passed and poverty.severity == dg.AssetCheckSeverity.ERROR
    [table] = [v.value for k, v in poverty.metadata.items() if k.startswith("failing rows")]
    assert [c.name for c in table.schema.columns][:4] == [
        "region_code",
        "level",
        "period",
        "poverty_rate",
    ]
    assert evaluations["gx_fct_poverty_warnings"].severity == dg.AssetCheckSeverity.WARN
    from orchestration.defs.checks import great_expectations_checks

    specs = {spec.name: spec for spec in great_expectations_checks().check_specs}
    assert specs["gx_fct_poverty"].blocking and not specs["gx_fct_poverty_warnings"].blocking
    email_on_run_failure(failure_context(instance, result))
    [message] = inbox.messages
    body = message.get_payload(decode=True).decode()
    assert "marts/fct_poverty:gx_fct_poverty" in body, body
    (tmp_path / "mail.txt").write_text(body)  # to look at
    assert "an impossible bound, for this test: poverty_rate <= 0.001" in body, body
    rows = [line for line in body.splitlines() if "region_code=" in line]
    assert 1 <= len(rows) <= 10, body
    assert all("level=" in r and "period=2025-03" in r and "poverty_rate=" in r for r in rows)
    assert any("region_code=64.74, level=regency, period=2025-03" in r for r in rows), rows
    assert " WITA." in body


def test_satudata_run_mails_its_own_failure_when_no_daemon_watches(tmp_path, inbox, monkeypatch):
    from tests.pipeline import add_submissions, run_pipeline

    home = tmp_path / "data"
    add_submissions(home)
    assert run_pipeline(home) == 0
    # the raw schema lost a column the warehouse reads: dbt fails, the run fails
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
    con.execute("alter table raw.households drop column welfare_decile")
    con.close()
    env = {
        "SATUDATA_ALERT_SMTP_HOST": "127.0.0.1",
        "SATUDATA_ALERT_SMTP_PORT": str(inbox.port),
        "SATUDATA_ALERT_TO": "data@kaltim.example",
    }
    assert run_pipeline(home, **env) == 1
    [message] = inbox.messages
    body = message.get_payload(decode=True).decode()
    assert "satudata run" in body and "welfare_decile" in body, body
