"""Pages people read (the forum's review pages, the bulletin): Jinja templates under
``orchestration/publication/templates``, numbers written the Indonesian way (1.234,5; 3,73 %)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import jinja2

from orchestration.ingest.contract import WITA

TEMPLATES = Path(__file__).parent / "templates"


def number(value: object, decimals: int = 0) -> str:
    """``1234.5`` → ``1.234,5`` (thousands with a dot, decimals with a comma); ``–`` if none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{float(value):,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def percent(value: object, decimals: int = 2) -> str:
    return "–" if value is None else f"{number(value, decimals)} %"


def signed(value: object, decimals: int = 2) -> str:
    if value is None:
        return "–"
    return ("+" if value > 0 else "−" if value < 0 else "±") + number(abs(value), decimals)


def when(value: dt.datetime | None) -> str:
    return "–" if value is None else f"{value.astimezone(WITA):%d-%m-%Y %H:%M} WITA"


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


def write(path: Path, template: str, **context: object) -> Path:
    """Render and write atomically (a reader never sees half a page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(environment().get_template(template).render(**context), encoding="utf-8")
    tmp.replace(path)
    return path
