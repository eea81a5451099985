"""What a figure covers: the submitting units expected under a region for a period, and for
each one whose register is not in the figures, why (not sent, quarantined). The one place the
bulletin, the review pages, the portal and ``satudata status`` ask, so that they agree."""

from __future__ import annotations

import duckdb

from orchestration.ingest.contract import covers_sql
from orchestration.ingest.store import rows

WHY = {  # status -> (Indonesian, English)
    "missing": ("belum mengirim", "not sent"),
    "quarantined": ("kiriman dikarantina", "submission quarantined"),
}


def expected_units(con: duckdb.DuckDBPyConnection, region: str, period: str) -> list[dict]:
    """Every submitting unit under ``region`` with its standing for ``period``: ``status``
    (accepted, pending, quarantined, missing: the best of its submissions), ``covered`` (its
    register is in the figures), and ``why`` not, in both languages."""
    found = rows(
        con,
        f"""
        select r.region_code as unit_code, r.region_name as unit_name,
               coalesce(arg_min(s.status, case s.status when 'accepted' then 0
                   when 'pending' then 1 when 'quarantined' then 2 else 3 end), 'missing') as status,
               arg_min(s.reason, case s.status when 'quarantined' then 0 else 1 end) as reason
        from dim_region r
        left join fct_submission_status s
            on s.unit_code = r.region_code and s.period = $period
            and s.status in ('accepted', 'pending', 'quarantined', 'missing')
        where r.is_submitting_unit and {covers_sql("$region", "r.region_code")}
        group by all
        order by r.region_code
        """,
        {"region": region, "period": period},
    )
    for unit in found:
        unit["covered"] = unit["status"] in ("accepted", "pending")
        words = WHY.get(unit["status"])
        unit["why"] = None
        if words and not unit["covered"]:
            detail = f" ({unit['reason']})" if unit["reason"] else ""
            unit["why"] = (f"{words[0]}{detail}", f"{words[1]}{detail}")
    return found


def not_covered(con: duckdb.DuckDBPyConnection, region: str, period: str) -> list[dict]:
    return [u for u in expected_units(con, region, period) if not u["covered"]]


def sentence(missing: list[dict]) -> tuple[str, str]:
    """``Kutai Barat (kiriman dikarantina …)`` in both languages, for a line beside a figure."""
    return (
        "; ".join(f"{u['unit_name']} ({u['unit_code']}): {u['why'][0]}" for u in missing),
        "; ".join(f"{u['unit_name']} ({u['unit_code']}): {u['why'][1]}" for u in missing),
    )
