"""The read stage: a submission's files opened as text tables in DuckDB.

A zip is extracted into a working folder; the manifest is read as JSON (its rules are the
contract's, :func:`contract.parse_manifest`); CSV files are read by DuckDB itself (after
transcoding Windows-1252 to UTF-8, which DuckDB's own ``latin-1`` reader cannot do), workbooks
by python-calamine. Everything is read as text: the rules of :mod:`validate` decide what a
value means.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.settings import ZipLimits

from .archive import CHUNK, Received
from .contract import SCHEMA, TABLES, QuarantineError, required_columns
from .landing import IGNORED_NAMES

_S_IFMT, _S_IFLNK = 0o170000, 0o120000
RATIO_FROM_BYTES = 1 << 20  # the compression ratio is judged once a member has written this


def unpack(received: Received, workdir: Path, limits: ZipLimits) -> Path:
    """The folder that holds the submission's files (a zip is extracted into ``workdir``,
    streamed, within ``limits`` counted on the bytes actually written)."""
    if received.kind == "folder":
        return received.entry
    target = workdir / "unzipped"
    try:
        with zipfile.ZipFile(received.entry) as archive:
            members = archive.infolist()
            if len(members) > limits.members:
                raise QuarantineError(
                    "ZIP_LIMIT_EXCEEDED", f"{len(members)} members (at most {limits.members})"
                )
            total = 0
            for member in members:
                name = Path(member.filename)
                if (member.external_attr >> 16) & _S_IFMT == _S_IFLNK:
                    raise QuarantineError(
                        "LINK_NOT_ALLOWED", f"{member.filename} is a symbolic link"
                    )
                if member.is_dir() or name.is_absolute() or ".." in name.parts:
                    continue
                if name.parts[0] == "__MACOSX" or name.name.lower() in IGNORED_NAMES:
                    continue
                out = target / name
                out.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with archive.open(member) as src, open(out, "wb") as dst:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        _within(limits, member, written, total)
                        dst.write(chunk)
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, zlib.error) as exc:
        raise QuarantineError("FILE_UNREADABLE", f"zip cannot be extracted: {exc}") from exc
    if not target.exists():
        raise QuarantineError("MANIFEST_MISSING", "the zip is empty")
    if (target / "manifest.json").exists():
        return target
    children = [p for p in target.iterdir()]
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return target


def _within(limits: ZipLimits, member: zipfile.ZipInfo, written: int, total: int) -> None:
    """Refuse a member before writing past a limit (the headers' sizes are not trusted)."""
    if written > limits.member_bytes:
        raise QuarantineError(
            "ZIP_LIMIT_EXCEEDED",
            f"{member.filename} unpacks to more than {limits.member_bytes} bytes",
        )
    if total > limits.total_bytes:
        raise QuarantineError(
            "ZIP_LIMIT_EXCEEDED", f"the zip unpacks to more than {limits.total_bytes} bytes"
        )
    if written > RATIO_FROM_BYTES and written > limits.ratio * max(1, member.compress_size):
        raise QuarantineError(
            "ZIP_LIMIT_EXCEEDED",
            f"{member.filename} unpacks to more than {limits.ratio} times its compressed size",
        )


def find_case_insensitive(folder: Path, name: str) -> Path | None:
    for path in folder.iterdir():
        if path.is_file() and path.name.strip().lower() == name:
            return path
    return None


MANIFEST_MAX_BYTES = 64 * 1024  # a manifest is a few lines


def read_manifest(folder: Path) -> dict:
    path = find_case_insensitive(folder, "manifest.json")
    if path is None:
        raise QuarantineError("MANIFEST_MISSING", "manifest.json not found")
    if path.stat().st_size > MANIFEST_MAX_BYTES:
        raise QuarantineError(
            "MANIFEST_INVALID", f"manifest.json is over {MANIFEST_MAX_BYTES} bytes"
        )
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise QuarantineError(
            "MANIFEST_INVALID", f"manifest.json is not valid JSON: {detail}"
        ) from exc
    if not isinstance(manifest, dict):
        raise QuarantineError("MANIFEST_INVALID", "manifest.json must be a JSON object")
    return manifest


# --- tables ------------------------------------------------------------------------------------


@dataclass
class SourceTable:
    table: str
    file: str
    fmt: str  # csv | xlsx
    encoding: str | None = None
    delimiter: str | None = None
    columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    rows: int = 0


def normalise_header(name: object) -> str:
    return str(name if name is not None else "").replace("\ufeff", "").strip().lower()


def _check_not_binary(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(65536)
    if head.startswith(b"PK\x03\x04") or b"\x00" in head:
        raise QuarantineError("FILE_UNREADABLE", f"{path.name} is a binary file, not CSV text")


def _transcode(path: Path, workdir: Path) -> Path:
    """A Windows-1252 file as UTF-8 (DuckDB's own ``latin-1`` reader is not Windows-1252)."""
    target = workdir / f"{path.stem}.utf8.csv"
    try:
        with (
            open(path, encoding="cp1252", newline="") as src,
            open(target, "w", encoding="utf-8", newline="") as dst,
        ):
            shutil.copyfileobj(src, dst, CHUNK)
    except UnicodeDecodeError as exc:
        raise QuarantineError(
            "FILE_UNREADABLE",
            f"{path.name} is neither UTF-8 nor Windows-1252 text (byte {exc.start})",
        ) from exc
    return target


def _header(path: Path) -> tuple[list[str], str]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise QuarantineError("COLUMN_MISSING", f"{path.name} has no header line")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    return [normalise_header(h) for h in header], delimiter


def _project(
    con: duckdb.DuckDBPyConnection,
    table: str,
    raw: str,
    line: str,
    header: list[str],
    wanted: list[str],
) -> tuple[list[str], list[str]]:
    """``src_<table>``: a view of the wanted columns of ``raw`` by name, plus ``line`` (an
    expression). Validation reads it once: a copy would cost more than it saves."""
    present, seen = {}, set()
    for position, name in enumerate(header):
        if name in seen and name in wanted:
            raise QuarantineError("FILE_UNREADABLE", f"{table}: column {name!r} appears twice")
        seen.add(name)
        present.setdefault(name, position)
    selected = [f'c{present[n]} as "{n}"' for n in wanted if n in present]
    missing = [f'null::varchar as "{n}"' for n in wanted if n not in present]
    con.execute(
        f"create or replace temp view src_{table} as "
        f"select {line} as line, {', '.join(selected + missing)} from {raw}"
    )
    ignored = [h for h in header if h and h not in wanted]
    return [n for n in wanted if n in present], ignored


class _NotUtf8(Exception):
    pass


def read_csv_table(
    con: duckdb.DuckDBPyConnection, table: str, path: Path, wanted: list[str], workdir: Path
) -> SourceTable:
    """DuckDB reads the file as UTF-8, checking every byte as it goes; a file that is not
    UTF-8 is read again as Windows-1252, transcoded."""
    _check_not_binary(path)
    try:
        return _read_csv(con, table, path, path, "utf-8", wanted)
    except _NotUtf8:
        return _read_csv(con, table, path, _transcode(path, workdir), "windows-1252", wanted)


def _read_csv(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    readable: Path,
    encoding: str,
    wanted: list[str],
) -> SourceTable:
    try:
        header, delimiter = _header(readable)
    except UnicodeDecodeError as exc:
        raise _NotUtf8 from exc
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    raw = f"raw_src_{table}"
    try:
        con.execute(
            f"create or replace temp table {raw} as "
            f"select * from read_csv($path, delim=$delim, quote='\"', escape='\"', header=true, "
            f"auto_detect=false, columns=$columns, null_padding=true, encoding='utf-8')",
            {"path": str(readable), "delim": delimiter, "columns": columns},
        )
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.InvalidInputException) and "Invalid unicode" in str(exc):
            raise _NotUtf8 from exc
        first_line = str(exc).strip().splitlines()[0]
        raise QuarantineError("FILE_UNREADABLE", f"{path.name}: {first_line}") from exc
    # rowid follows the file's order (insertion order is preserved): the header is line 1
    found, ignored = _project(con, table, raw, "rowid + 2", header, wanted)
    rows = con.execute(f"select count(*) from src_{table}").fetchone()[0]
    return SourceTable(table, path.name, "csv", encoding, delimiter, found, ignored, rows)


def _cell_text(value: object, is_identifier: bool) -> str | None:
    """A workbook cell as the text an operator would have typed."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float):
        if is_identifier:
            # a numeric cell cannot hold 16 digits: show it as Excel does (6.47402E+15),
            # so the ID_NOT_TEXT rule rejects it instead of accepting a damaged number
            return f"{float(value):.5E}"
        if float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    return str(value)


def read_xlsx_tables(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    wanted: dict[str, list[str]],
    identifiers: dict[str, set[str]],
) -> dict[str, SourceTable]:
    import pyarrow as pa  # (only when a workbook arrives)
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except (CalamineError, OSError, ValueError) as exc:
        raise QuarantineError("FILE_UNREADABLE", f"{path.name}: {exc}") from exc
    sheets = {normalise_header(name): name for name in workbook.sheet_names}
    missing = [t for t in TABLES if t not in sheets]
    if missing:
        raise QuarantineError("FILE_MISSING", f"{path.name} has no sheet {', '.join(missing)}")
    result = {}
    for table in TABLES:
        try:
            rows = workbook.get_sheet_by_name(sheets[table]).to_python(skip_empty_area=False)
        except (CalamineError, ValueError) as exc:
            raise QuarantineError("FILE_UNREADABLE", f"{path.name}/{table}: {exc}") from exc
        start = next(
            (i for i, row in enumerate(rows) if any(c not in ("", None) for c in row)), None
        )
        if start is None:
            raise QuarantineError("COLUMN_MISSING", f"{path.name}/{table} has no header row")
        header = [normalise_header(h) for h in rows[start]]
        ids = {i for i, name in enumerate(header) if name in identifiers[table]}
        lines, columns = [], [[] for _ in header]
        for index in range(start + 1, len(rows)):
            row = rows[index]
            if not any(c not in ("", None) for c in row):
                continue
            lines.append(index + 1)
            for i in range(len(header)):
                columns[i].append(_cell_text(row[i] if i < len(row) else None, i in ids))
        arrow = pa.table(
            {"line": pa.array(lines, pa.int64())}
            | {f"c{i}": pa.array(col, pa.string()) for i, col in enumerate(columns)}
        )
        raw = f"raw_src_{table}"
        con.register("xlsx_sheet", arrow)
        con.execute(f"create or replace temp table {raw} as select * from xlsx_sheet")
        con.unregister("xlsx_sheet")
        found, ignored = _project(con, table, raw, "line", header, wanted[table])
        result[table] = SourceTable(
            table, f"{path.name}#{table}", "xlsx", None, None, found, ignored, len(lines)
        )
    return result


def read_tables(
    con: duckdb.DuckDBPyConnection, folder: Path, workdir: Path
) -> dict[str, SourceTable]:
    """The three tables as the views ``src_<table>`` (see ``_project``), with what was found."""
    wanted = {t: [c.name for c in SCHEMA[t]] for t in TABLES}
    csvs = {t: find_case_insensitive(folder, f"{t}.csv") for t in TABLES}
    workbooks = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".xlsx")
    if all(csvs.values()):
        sources = {t: read_csv_table(con, t, csvs[t], wanted[t], workdir) for t in TABLES}
    elif workbooks and not any(csvs.values()):
        identifiers = {t: {c.name for c in SCHEMA[t] if c.kind in ("kk", "nik")} for t in TABLES}
        sources = read_xlsx_tables(con, workbooks[0], wanted, identifiers)
    else:
        missing = [f"{t}.csv" for t, p in csvs.items() if p is None]
        raise QuarantineError(
            "FILE_MISSING",
            f"missing {', '.join(missing)} (or one .xlsx with sheets keluarga, anggota, bantuan)",
        )
    for table, source in sources.items():
        absent = [c for c in required_columns(table) if c not in source.columns]
        if absent:
            raise QuarantineError(
                "COLUMN_MISSING", f"{source.file}: missing column(s) {', '.join(absent)}"
            )
    if sources["keluarga"].rows == 0:
        raise QuarantineError("KELUARGA_EMPTY", f"{sources['keluarga'].file} has no data rows")
    return sources
