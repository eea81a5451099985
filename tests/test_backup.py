"""``satudata backup`` and ``satudata restore``: a restored data root has the same current
publication, the same run history and people, and the next run works."""

from __future__ import annotations

import sqlite3

import pytest

from orchestration import cli
from orchestration.publication.publish import current_id
from orchestration.settings import Settings
from tests.pipeline import add_submissions, build_published, environment, run_pipeline

pytestmark = pytest.mark.xdist_group("backup")


def test_a_backup_restored_into_an_empty_root_is_the_same_and_runs_on(tmp_path, capsys):
    home = build_published(tmp_path / "data")
    with environment(home):
        secret = tmp_path / "pw"
        secret.write_text("sandi-panjang-sekali\n")
        assert cli.main(["user", "add", "rina", "--name", "Rina", "--role", "reader",
                         "--password-file", str(secret)]) == 0  # fmt: skip
        backup = tmp_path / "backup"
        assert cli.main(["backup", str(backup)]) == 0
        out = capsys.readouterr().out
        assert "NOT in this backup, keep it with it" in out  # the key came from the environment
        assert "SQLite, inside the data root: in this backup" in out
        assert cli.main(["backup", str(backup)]) == 2  # never over another backup
        assert cli.main(["backup", str(home / "inside")]) == 2  # never into the data root
    publication = current_id(Settings(home))
    assert publication is not None
    assert not (backup / "tmp").exists()

    restored = tmp_path / "restored" / "data"
    with environment(restored):
        assert cli.main(["restore", str(backup)]) == 0
        assert cli.main(["restore", str(backup)]) == 2  # never over a data root in use
        capsys.readouterr()
        assert current_id(Settings(restored)) == publication  # the same file, hard link kept
        assert cli.main(["status"]) == 0
        status = capsys.readouterr().out
        assert f"Published {publication}" in status and "Last run" in status
        assert "succeeded" in status
    users = sqlite3.connect(restored / "portal" / "portal.sqlite").execute(
        "select username from users"
    )
    assert [u for (u,) in users] == ["rina"]
    add_submissions(restored, sent="2025-04-06T09:00:00+08:00", households=21)
    assert run_pipeline(restored) == 0
    assert current_id(Settings(restored)) != publication
    assert current_id(Settings(home)) == publication  # the original is untouched
