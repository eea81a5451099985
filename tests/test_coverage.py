"""Every figure says what it covers: with Bontang Barat quarantined and the kabupaten not sent,
the bulletin, the review pages and ``satudata status`` name the units left out and why, next to
the figures, and agree on how many units were expected."""

from __future__ import annotations

import re

import duckdb
import pytest

from orchestration import cli
from orchestration.publication.coverage import expected_units
from tests.pipeline import environment, run_pipeline
from tests.portal import send
from tests.submissions import manifest, register, write_submission

pytestmark = pytest.mark.xdist_group("coverage")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("coverage") / "data"
    send(home, "64.74.01")
    send(home, "64.74.02")
    bad = register("64.74.03", households=20)
    for row in bad["anggota"]:
        row["nik"] = row["nik"][:9]  # every NIK cut short: quarantined
    write_submission(home / "landing", "bad", bad, manifest("64.74.03", period="2025-03"))
    assert run_pipeline(home) == 0
    return home


def test_the_counts_of_expected_units_agree_everywhere(home, capsys):
    with duckdb.connect(str(home / "warehouse" / "published.duckdb"), read_only=True) as con:
        units = expected_units(con, "64", "2025-03")
        (expected, reporting) = con.execute(
            "select expected_units, reporting_units from fct_poverty "
            "where region_code = '64' and period = '2025-03'"
        ).fetchone()
    assert len(units) == expected == 12
    assert sum(u["covered"] for u in units) == reporting == 2
    bulletin = (home / "warehouse" / "bulletin.html").read_text()
    assert "tidak mencakup 10 dari 12 unit" in bulletin
    province = (home / "reports" / "review" / "2025-03" / "64.html").read_text()
    assert re.search(r"0 dari / of 12", province)
    bontang = (home / "reports" / "review" / "2025-03" / "64.74.html").read_text()
    assert re.search(r"0 dari / of 3", bontang)
    with environment(home):
        assert cli.main(["status"]) == 0
    assert "Units in these figures: 2 of 12." in capsys.readouterr().out


def test_each_left_out_unit_is_named_with_why_beside_the_figures(home, capsys):
    bulletin = (home / "warehouse" / "bulletin.html").read_text()
    # one period: said in words, not drawn as a trend; sources by name and link
    assert 'id="single-period"' in bulletin and "trends across periods appear" in bulletin
    assert re.search(r'<a href="https://[^"]+">[a-z.]+\.[a-z]+ \(\d{4}', bulletin)
    assert "shared/reference" not in bulletin and ".md)" not in bulletin
    alert = re.search(r'<p class="alert" id="not-covered">(.*?)</p>', bulletin, re.S).group(1)
    assert "Bontang Barat (64.74.03): kiriman dikarantina (TOO_MANY_REJECTS" in alert
    assert "Kabupaten Kutai Barat (64.07): belum mengirim" in alert
    assert "cannot be approved until" in alert
    # every regency keeps its row in the regency table, with why it has no figures
    table = re.search(r'<section id="wilayah">(.*?)</section>', bulletin, re.S).group(1)
    assert table.count('class="no-figures"') == 9 and "no figures: not sent" in table
    bontang = (home / "reports" / "review" / "2025-03" / "64.74.html").read_text()
    assert 'id="not-covered"' in bontang and "Bontang Barat (64.74.03)" in bontang
    assert "cannot be approved until they send" in bontang
    index = (home / "reports" / "review" / "2025-03" / "index.html").read_text()
    listed = re.findall(r"\((64(?:\.\d\d)+)\)</(?:a|td)>", index.split('id="units"')[1])
    assert len(listed) == 12
    assert "no: submission quarantined" in index and "no: not sent" in index
    # the portal: the walidata of Kota Bontang reads the same beside the figures
    from orchestration.portal.accounts import Accounts
    from orchestration.settings import Settings
    from tests.portal import login, password, serving

    Accounts(Settings(home)).add("wali", "Budi, Walidata", "walidata", "64.74", password("wali"))
    with serving(home) as base:
        client, _ = login(base, "wali")
        page = client.get("/regions/64.74").text
    assert "Bontang Barat (64.74.03)" in page and "submission quarantined" in page
    assert "0 dari / of 3" in page
    with environment(home):
        assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "left out: 64.74.03 Bontang Barat: submission quarantined (TOO_MANY_REJECTS" in out
