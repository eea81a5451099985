"""The current publication as files a reader downloads: one CSV per published table, and one
XLSX workbook with a sheet per table and a sheet ``columns`` that describes every column (the
comments the publication carries)."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

import duckdb
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment

from orchestration.publication.publish import PUBLISHED_TABLES
from orchestration.settings import Settings


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(settings.published_db), read_only=True)


def table_csv(settings: Settings, table: str) -> bytes:
    """One published table as UTF-8 CSV (with a BOM, so that Excel reads it as UTF-8)."""
    if table not in PUBLISHED_TABLES:
        raise KeyError(table)
    with _connect(settings) as con:
        cursor = con.execute(f"select * from {table} order by {PUBLISHED_TABLES[table]}")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([d[0] for d in cursor.description])
        while batch := cursor.fetchmany(10_000):
            writer.writerows(batch)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def _cell(value: object) -> object:
    if isinstance(value, list | dict):
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    if hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is not None:
        return value.replace(tzinfo=None)  # Excel has no time zones: the value as stored (UTC)
    return value


def workbook(settings: Settings) -> Path:
    """The publication as one XLSX workbook, in a temporary file the caller removes."""
    (settings.home / "tmp").mkdir(parents=True, exist_ok=True)
    book = Workbook(write_only=True)
    with _connect(settings) as con:
        described = con.execute(
            "select table_name, column_name, data_type, comment from duckdb_columns() "
            "where schema_name = 'main' order by table_name, column_index"
        ).fetchall()
        comments = {(t, c): text for t, c, _, text in described}
        for table, order in PUBLISHED_TABLES.items():
            cursor = con.execute(f"select * from {table} order by {order}")
            sheet = book.create_sheet(table[:31])
            header = []
            for name, *_rest in cursor.description:
                cell = _header_cell(sheet, name, comments.get((table, name)))
                header.append(cell)
            sheet.append(header)
            while batch := cursor.fetchmany(10_000):
                for row in batch:
                    sheet.append([_cell(v) for v in row])
        columns = book.create_sheet("columns")
        columns.append(["table", "column", "type", "description"])
        for table, column, data_type, text in described:
            if table in PUBLISHED_TABLES:
                columns.append([table, column, data_type, text or ""])
    fd, name = tempfile.mkstemp(suffix=".xlsx", dir=settings.home / "tmp")
    os.close(fd)
    book.save(name)
    return Path(name)


def _header_cell(sheet, name: str, description: str | None) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=name)
    if description:
        cell.comment = Comment(description, "satudata")
    return cell
