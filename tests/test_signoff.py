"""The Forum Satu Data in Kota Bontang: confirmation by each kecamatan, the walidata's approval,
period locking with a pending revision, an unlock with a reason, and a sudden change flagged.

Real runs of the pipeline on a real data root; decisions through the ``satudata`` commands and
the Dagster ``signoff`` job.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration import cli
from orchestration.forum.signoff import SignoffError, decide, figures_digest, verify_log
from orchestration.settings import Settings
from tests.pipeline import copy_home, environment, run_pipeline
from tests.submissions import manifest, register, write_submission

pytestmark = pytest.mark.xdist_group("signoff")

UNITS = ("64.74.01", "64.74.02", "64.74.03")
VILLAGES = {"64.74.03": ["64.74.03.1001", "64.74.03.1002", "64.74.03.1003"]}
CONTRACT_POVERTY = (
    "region_code, level, period, households, population, poverty_line, poor_population, "
    "poverty_rate, poverty_gap_index, poverty_severity_index, extreme_poverty_rate, "
    "reporting_units, expected_units"
)


def send(home: Path, unit: str, period: str, sent: str, households: int = 20) -> None:
    data = register(unit, households=households, villages=VILLAGES.get(unit))
    for row in data["keluarga"]:
        row["tanggal_verifikasi"] = f"{period}-05"
    for row in data["bantuan"]:
        row["tanggal_salur"] = f"{period}-10"
    write_submission(
        home / "landing",
        f"{unit}-{period}-{sent[:10]}",
        data,
        manifest(unit, period=period, sent=sent),
    )


@pytest.fixture(scope="module")
def bontang(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kota Bontang's three kecamatan sent March 2025; published once."""
    home = tmp_path_factory.mktemp("bontang") / "data"
    for unit in UNITS:
        send(home, unit, "2025-03", "2025-04-03T09:00:00+08:00")
    assert run_pipeline(home) == 0
    return home


def published(home: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse" / "published.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def register_rows(home: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def decisions(home: Path) -> int:
    return register_rows(home, "select count(*) from raw.signoffs")[0][0]


def satudata(*args: str) -> int:
    return cli.main(list(args))


def test_bontang_signs_off_locks_and_unlocks(bontang: Path, tmp_path: Path, capsys) -> None:
    home = copy_home(bontang, tmp_path / "data")
    with environment(home):
        settings = Settings.from_env()
        review = home / "reports" / "review" / "2025-03"
        what_to_do = (review / "64.74.html").read_text().split("Langkah berikutnya")[1]
        assert "satudata approve 64.74 2025-03" in what_to_do and "unlock" not in what_to_do
        # two of three kecamatan confirm: the walidata cannot approve Kota Bontang yet
        assert satudata("confirm", "64.74.01", "2025-03", "--by", "Rina, Kec. Bontang Utara") == 0
        assert satudata("confirm", "64.74.02", "2025-03", "--by", "Ari, Kec. Bontang Selatan") == 0
        capsys.readouterr()
        assert satudata("approve", "64.74", "2025-03", "--by", "Walidata Bappeda") == 2
        err = capsys.readouterr().err
        assert "2 of 3 units have confirmed; not yet: 64.74.03" in err
        assert "2 dari 3 unit sudah konfirmasi" in err
        assert decisions(home) == 2

        # the third confirms; the walidata approves
        assert satudata("confirm", "64.74.03", "2025-03", "--by", "Sri, Kec. Bontang Barat") == 0
        assert (
            satudata(
                "approve", "64.74", "2025-03", "--by", "Walidata Bappeda", "--note", "Forum 2025"
            )
            == 0
        )
        approval = register_rows(
            home,
            "select figures_digest, submission_ids, publication_id from raw.signoffs "
            "where action = 'approve'",
        )
        assert len(approval) == 1 and len(approval[0][1]) == 3
        assert approval[0][0] == figures_digest(settings, "64.74", "2025-03")

        # the next run publishes the approval: every Bontang row approved, the province not
        assert run_pipeline(home) == 0
        status = dict(
            published(
                home,
                "select region_code, approval_status || '/' || coalesce(approved_by, '') "
                "from fct_poverty where period = '2025-03' and level <> 'village'",
            )
        )
        assert status == {
            "64": "provisional/",
            "64.74": "approved/Walidata Bappeda",
            "64.74.01": "approved/Walidata Bappeda",
            "64.74.02": "approved/Walidata Bappeda",
            "64.74.03": "approved/Walidata Bappeda",
        }
        for table in ("fct_employment", "fct_program_coverage"):
            assert published(
                home,
                f"select distinct approval_status from {table} "
                "where region_code like '64.74%' and period = '2025-03'",
            ) == [("approved",)]
        assert published(
            home, "select action, region_code, decided_by from fct_signoff_log order by decided_at"
        ) == [
            ("confirm", "64.74.01", "Rina, Kec. Bontang Utara"),
            ("confirm", "64.74.02", "Ari, Kec. Bontang Selatan"),
            ("confirm", "64.74.03", "Sri, Kec. Bontang Barat"),
            ("approve", "64.74", "Walidata Bappeda"),
        ]
        assert published(
            home,
            "select count(*) from fct_submission_status "
            "where period = '2025-03' and confirmed_by is not null",
        ) == [(3,)]
        # the approved figures, as the forum saw them, are what is published
        assert approval[0][0] == figures_digest(settings, "64.74", "2025-03")
        locked = published(
            home,
            f"select {CONTRACT_POVERTY} from fct_poverty "
            "where period = '2025-03' and region_code like '64.74%' order by all",
        )
        approved_home = copy_home(home, tmp_path / "approved")  # for the tampering test below

        # a later revision for the approved period (12 households instead of 20) and April's
        # submissions, in which Bontang Selatan's households halve
        send(home, "64.74.01", "2025-03", "2025-04-20T09:00:00+08:00", households=12)
        send(home, "64.74.01", "2025-04", "2025-05-03T09:00:00+08:00")
        send(home, "64.74.02", "2025-04", "2025-05-03T09:00:00+08:00", households=10)
        send(home, "64.74.03", "2025-04", "2025-05-03T09:00:00+08:00")
        assert run_pipeline(home) == 0

        # the revision changes no published figure ...
        assert (
            published(
                home,
                f"select {CONTRACT_POVERTY} from fct_poverty "
                "where period = '2025-03' and region_code like '64.74%' order by all",
            )
            == locked
        )
        assert approval[0][0] == figures_digest(settings, "64.74", "2025-03")
        ((revision, report_path),) = register_rows(
            home,
            "select submission_id, report_path from raw.submissions "
            "where unit_code = '64.74.01' and period = '2025-03' and status = 'pending'",
        )
        # ... its report says it is held, and why
        report = json.loads(Path(report_path).with_suffix(".json").read_text())
        assert report["status"] == "pending"
        assert report["held_by"]["region_code"] == "64.74"
        assert report["held_by"]["approved_by"] == "Walidata Bappeda"
        assert "dikunci" in Path(report_path).read_text()
        # ... and what it would change, figure by figure, for the unit and for the walidata
        changes = {
            (region, measure): (before, after)
            for region, measure, before, after in published(
                home,
                "select region_code, measure, published_value, pending_value "
                "from fct_pending_revisions where period = '2025-03'",
            )
        }
        assert changes[("64.74.01", "households")] == (20, 12)
        assert changes[("64.74", "households")] == (60, 52)
        assert changes[("64", "population")] == (120, 104)
        page = (home / "reports" / "review" / "2025-03" / "64.74.html").read_text()
        assert "Revisi yang ditahan" in page and revision[:12] in page
        assert "satudata unlock 64.74 2025-03" in page
        what_to_do = page.split("Langkah berikutnya")[1]  # approved: unlock, not approve again
        assert "satudata unlock 64.74 2025-03" in what_to_do
        assert "satudata approve" not in what_to_do and "satudata confirm" not in what_to_do
        unit_page = (review / "64.74.01.html").read_text()
        assert "satudata unlock 64.74 2025-03" in unit_page.split("Langkah berikutnya")[1]

        # the halving of Bontang Selatan's households is flagged: a data-quality row, a
        # warning check, a line on the unit's review page
        ((change, threshold, affected),) = published(
            home,
            "select change, threshold, affected_rows from fct_data_quality "
            "where region_code = '64.74.02' and period = '2025-04' "
            "and issue = 'sudden_change_households'",
        )
        assert change == pytest.approx(-50.0) and threshold == 25 and affected == 10
        assert published(
            home,
            "select count(*) from fct_data_quality where period = '2025-04' "
            "and issue = 'sudden_change_households' and affected_rows > 0 "
            "and region_code in ('64.74.01', '64.74.03')",
        ) == [(0,)]
        (warned,) = published(
            home, "select checks_warned from publication_log order by published_at desc limit 1"
        )[0]
        assert warned >= 1
        unit_page = (home / "reports" / "review" / "2025-04" / "64.74.02.html").read_text()
        assert "Perubahan mendadak" in unit_page and "−50,0 %" in unit_page

        # bad decisions are refused with a reason and change nothing
        before = decisions(home)
        for args, message in [
            (("confirm", "64.99", "2025-03", "--by", "x"), "not a registered submitting unit"),
            (("confirm", "64.74.03", "2025-13", "--by", "x"), "is not YYYY-MM"),
            (("confirm", "64.74.03", "2024-01", "--by", "x"), "no accepted submission"),
            (("approve", "64.74", "2025-03", "--by", "x"), "already approved"),
            (("approve", "64.74.01", "2025-03", "--by", "x"), "not a regency or the province"),
            (("unlock", "64.74", "2025-04", "--by", "x", "--reason", "y"), "not locked"),
            (("confirm", "64.74.01", "2025-03", "--by", "  "), "name of who decides"),
            (("confirm", "64.74.01", "2025-03", "--by", "x"), "is locked by the approval"),
            (("withdraw", "64.74.02", "2025-04", "--by", "x", "--reason", "y"), "not confirmed"),
        ]:
            capsys.readouterr()
            assert satudata(*args) == 2, args
            assert message in capsys.readouterr().err, args
        with pytest.raises(SignoffError, match="needs a reason"):
            decide(settings, "unlock", "64.74", "2025-03", "Walidata", note=" ")
        assert decisions(home) == before
        assert register_rows(
            home, "select status from raw.submissions where submission_id = ?", [revision]
        ) == [("pending",)]

        # an unlock with a reason lets the revision through, and is recorded
        assert satudata(
            "unlock", "64.74", "2025-03", "--by", "Walidata Bappeda",
            "--reason", "Verifikasi lapangan ulang Bontang Utara",
        ) == 0  # fmt: skip
        assert register_rows(
            home,
            "select status from raw.submissions where unit_code = '64.74.01' "
            "and period = '2025-03' order by submitted_at",
        ) == [("superseded",), ("accepted",)]
        assert run_pipeline(home) == 0
        assert published(
            home,
            "select households, approval_status from fct_poverty "
            "where region_code = '64.74' and period = '2025-03'",
        ) == [(52, "provisional")]
        ((note, released),) = published(
            home, "select note, submission_ids from fct_signoff_log where action = 'unlock'"
        )
        assert note == "Verifikasi lapangan ulang Bontang Utara" and released == revision
        assert published(home, "select count(*) from fct_pending_revisions") == [(0,)]
        # the log is intact, and a changed or removed decision shows
        con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
        try:
            assert verify_log(con) == []
            capsys.readouterr()
            con.close()
            assert satudata("status") == 0
            assert "Sign-off log: 5 decisions, intact." in capsys.readouterr().out
            con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
            con.execute(
                "update raw.signoffs set decided_by = 'Someone else' where action = 'approve'"
            )
            con.execute("delete from raw.signoffs where region_code = '64.74.02'")
            problems = verify_log(con)
        finally:
            con.close()
        assert len(problems) == 2  # Bontang Barat's confirmation lost its predecessor ...
        assert "the decision before it is missing" in problems[0]
        assert "changed after it was recorded" in problems[1]  # ... the approval was altered
        # the confirmation was for the old submission: Bontang Utara must confirm again
        assert published(
            home,
            "select confirmed_by from fct_submission_status "
            "where unit_code = '64.74.01' and period = '2025-03' and status = 'accepted'",
        ) == [(None,)]

    a_tampered_log_stops_decisions_and_publishes_no_approval(approved_home, capsys)


def a_tampered_log_stops_decisions_and_publishes_no_approval(home: Path, capsys) -> None:
    """Kota Bontang approved; then somebody changes who approved in the build file."""
    backup = home.parent / "backup.duckdb"
    shutil.copy(home / "warehouse" / "build.duckdb", backup)  # the operator's backup
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
    con.execute("update raw.signoffs set decided_by = 'Walidata Palsu' where action = 'approve'")
    con.close()
    with environment(home):
        before = decisions(home)
        for args in (
            ("unlock", "64.74", "2025-03", "--by", "Walidata Bappeda", "--reason", "cek ulang"),
            ("confirm", "64.74.01", "2025-04", "--by", "Rina"),
        ):
            capsys.readouterr()
            assert satudata(*args) == 2, args
            err = capsys.readouterr().err
            assert "Refused: the sign-off log is not intact" in err, err
            assert "Ditolak: log sign-off tidak utuh" in err, err
        assert decisions(home) == before

        assert run_pipeline(home) == 0  # the figures publish, as provisional
        assert published(home, "select distinct approval_status, approved_by from fct_poverty") == [
            ("provisional", None)
        ]
        assert published(home, "select count(*) from fct_signoff_log") == [(0,)]
        assert published(
            home, "select count(*) from fct_submission_status where confirmed_by is not null"
        ) == [(0,)]
        ((intact, problems),) = published(
            home,
            "select signoff_log_intact, signoff_log_problems from publication_log "
            "order by published_at desc limit 1",
        )
        assert intact is False and "changed after it was recorded" in problems
        bulletin = (home / "warehouse" / "bulletin.html").read_text()
        assert 'id="signoff-log-broken"' in bulletin and "Walidata Palsu" not in bulletin
        assert "The sign-off log is not intact: every figure is provisional." in bulletin
        capsys.readouterr()
        assert satudata("status") == 0
        out = capsys.readouterr().out
        assert "NOT INTACT" in out and "no approval (every figure provisional)" in out

        # restored from the backup: the approval holds again, with the true name
        con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
        con.execute("attach ? as backup (read_only)", [str(backup)])
        con.execute("delete from raw.signoffs")
        con.execute("insert into raw.signoffs select * from backup.raw.signoffs")
        con.close()
        assert run_pipeline(home) == 0
        assert published(
            home,
            "select approval_status, approved_by from fct_poverty "
            "where region_code = '64.74' and period = '2025-03'",
        ) == [("approved", "Walidata Bappeda")]
        assert published(home, "select count(*) from fct_signoff_log") == [(4,)]
        bulletin = (home / "warehouse" / "bulletin.html").read_text()
        assert 'id="signoff-log-broken"' not in bulletin


def test_signoff_job_in_the_dagster_ui(bontang: Path, tmp_path: Path) -> None:
    """The launchpad's job: a decision with config; a refused one fails with its reason and
    records nothing; a successful one asks for a nightly run."""
    from orchestration.defs.definitions import defs
    from orchestration.defs.sensors import publish_after_signoff

    home = copy_home(bontang, tmp_path / "data")
    with environment(home):
        instance = cli._dagster_instance(Settings.from_env())
        job = defs().resolve_job_def("signoff")

        def launch(**config: str) -> dg.ExecuteInProcessResult:
            return job.execute_in_process(
                run_config={"ops": {"record_signoff": {"config": config}}},
                instance=instance,
                raise_on_error=False,
            )

        refused = launch(action="confirm", region_code="64.74.09", period="2025-03",
                         decided_by="Operator")  # fmt: skip
        assert not refused.success
        (failure,) = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
        assert (
            "not a registered submitting unit"
            in failure.step_failure_data.user_failure_data.description
        )
        assert decisions(home) == 0
        for name in ("Sri\x00", "Sri\x1b[2J", "Sri\nBontang", "S" * 121):  # refused as on the CLI
            refused = launch(action="confirm", region_code="64.74.03", period="2025-03",
                             decided_by=name)  # fmt: skip
            assert not refused.success
            (failure,) = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
            description = failure.step_failure_data.user_failure_data.description
            assert "Refused: the name of who decides must be one line" in description
            assert "Ditolak: nama yang memutuskan harus satu baris" in description
        assert decisions(home) == 0

        done = launch(action="confirm", region_code="64.74.03", period="2025-03",
                      decided_by="Sri, Kec. Bontang Barat", note="validasi selesai")  # fmt: skip
        assert done.success
        assert register_rows(home, "select action, region_code, note from raw.signoffs") == [
            ("confirm", "64.74.03", "validasi selesai")
        ]
        run = instance.get_run_by_id(done.run_id)
        (success,) = instance.all_logs(done.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
        context = dg.build_run_status_sensor_context(
            sensor_name="publish_after_signoff",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=success.dagster_event,
        )
        request = publish_after_signoff(context)
        assert isinstance(request, dg.RunRequest) and request.run_key == done.run_id
        assert publish_after_signoff.job_name == "nightly"


HOSTILE_NAMES = {
    "100 kB": "Rina " * 20_000,
    "a line break": "Rina\nApproved by the Governor",
    "ANSI escapes": "\x1b[2J\x1b[31mRina",
    "a NUL byte": "Rina\x00",
    "a bidi override": "Rina \u202eanidraW",
}


@pytest.mark.parametrize("what", list(HOSTILE_NAMES))
def test_a_name_that_is_not_one_printable_line_is_refused_and_nothing_is_recorded(
    bontang: Path, tmp_path: Path, capsys, what: str
) -> None:
    home = copy_home(bontang, tmp_path / "data")
    name = HOSTILE_NAMES[what]
    with environment(home):
        capsys.readouterr()
        if "\x00" not in name:  # (a NUL byte cannot be an argument of a command)
            assert satudata("confirm", "64.74.01", "2025-03", "--by", name) == 2
            err = capsys.readouterr().err
            assert "Ditolak: nama yang memutuskan harus satu baris" in err
            assert "Refused: the name of who decides must be one line of printable text" in err
            assert name not in err and "\x1b" not in err and len(err) < 1000
        with pytest.raises(SignoffError, match="one line of printable text"):
            decide(Settings.from_env(), "confirm", "64.74.01", "2025-03", name)
        assert decisions(home) == 0


def test_a_note_too_long_or_with_control_characters_is_refused(
    bontang: Path, tmp_path: Path, capsys
) -> None:
    home = copy_home(bontang, tmp_path / "data")
    with environment(home):
        for note in ("x" * 1001, "validasi\x1b[2J selesai", "selesai\x00"):
            with pytest.raises(SignoffError, match="a note or reason must be printable text"):
                decide(Settings.from_env(), "confirm", "64.74.01", "2025-03", "Rina", note)
        capsys.readouterr()
        assert satudata("withdraw", "64.74.01", "2025-03", "--by", "Rina",
                        "--reason", "r" * 5000) == 2  # fmt: skip
        assert "at most 1000 characters" in capsys.readouterr().err
        assert decisions(home) == 0
        # a note of several lines, at the limit, is a note
        note = "Validasi selesai.\r\nDicek ulang: " + "x" * 969
        assert len(note.replace("\r\n", "\n")) == 1000
        assert satudata("confirm", "64.74.01", "2025-03", "--by", "Rina, Kec. Bontang Utara",
                        "--note", note) == 0  # fmt: skip
        assert register_rows(home, "select decided_by, note from raw.signoffs") == [
            ("Rina, Kec. Bontang Utara", note.replace("\r\n", "\n"))
        ]
