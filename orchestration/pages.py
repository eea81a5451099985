"""The one way a page people read is written: Jinja templates under ``orchestration/templates``
(autoescaped), with the filters every page shares: numbers and percentages written the
Indonesian way by Babel (``1.234,5``; ``3,73 %``) and times on the operators' clock (WITA).
Used by the operator's validation report (ingest), the bulletin (publication), the review
pages (forum) and the portal."""

from __future__ import annotations

import datetime as dt
import math
from functools import cache
from pathlib import Path

import jinja2
from babel.numbers import format_decimal

from orchestration.settings import WITA

TEMPLATES = Path(__file__).parent / "templates"
LOCALE = "id_ID"


def number(value: object, decimals: int = 0) -> str:
    """``1234.5`` → ``1.234,5`` (thousands with a dot, decimals with a comma); ``–`` if none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=LOCALE)


def percent(value: object, decimals: int = 2) -> str:
    return "–" if value is None else f"{number(value, decimals)} %"


def signed(value: object, decimals: int = 2) -> str:
    if value is None:
        return "–"
    return ("+" if value > 0 else "−" if value < 0 else "±") + number(abs(value), decimals)


def when(value: dt.datetime | str | None) -> str:
    """A moment on the operators' clock: ``03-04-2025 09:12 WITA``; an ISO text that is not a
    moment with a time zone (a manifest's value as sent) is shown as it is."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is None:
            return value
        value = moment
    return f"{value.astimezone(WITA):%Y-%m-%d %H:%M} WITA"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=number, percent=percent, signed=signed, when=when)
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)


def write(path: Path, template: str, **context: object) -> Path:
    """Render and write atomically (a reader never sees half a page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(template, **context), encoding="utf-8")
    tmp.replace(path)
    return path
