"""Write submissions into a landing folder the way district operators write them."""

from __future__ import annotations

import contextlib
import copy
import json
import zipfile
from pathlib import Path

KELUARGA_COLUMNS = [
    "no_kk", "nik_kepala", "nama_kepala", "kode_desa", "jumlah_anggota",
    "pengeluaran_per_kapita", "desil", "tanggal_verifikasi",
]  # fmt: skip
ANGGOTA_COLUMNS = [
    "nik", "no_kk", "nama", "jenis_kelamin", "tanggal_lahir", "status_pekerjaan", "lapangan_usaha",
]  # fmt: skip
BANTUAN_COLUMNS = ["no_kk", "nik", "kode_program", "tanggal_salur", "nilai"]
COLUMNS = {"keluarga": KELUARGA_COLUMNS, "anggota": ANGGOTA_COLUMNS, "bantuan": BANTUAN_COLUMNS}


def kk(unit: str, i: int) -> str:
    return unit.replace(".", "").ljust(6, "0")[:6] + "010120" + f"{i:04d}"


def nik(unit: str, i: int, female: bool = False, birth: str = "150590") -> str:
    day = int(birth[:2]) + (40 if female else 0)
    return unit.replace(".", "").ljust(6, "0")[:6] + f"{day:02d}" + birth[2:] + f"{i:04d}"


def register(
    unit: str = "64.74.02", households: int = 20, villages: list[str] | None = None
) -> dict:
    """A valid register: ``households`` couples, one PKH receipt each."""
    villages = villages or [f"{unit}.{1001 + v}" for v in range(6)]
    keluarga, anggota, bantuan = [], [], []
    for i in range(1, households + 1):
        head, spouse = nik(unit, i), nik(unit, i, female=True, birth="150592")
        keluarga.append(
            {
                "no_kk": kk(unit, i), "nik_kepala": head, "nama_kepala": f"Kepala {i}",
                "kode_desa": villages[i % len(villages)], "jumlah_anggota": "2",
                "pengeluaran_per_kapita": str(400_000 + 50_000 * i), "desil": "3",
                "tanggal_verifikasi": "2025-03-05",
            }
        )  # fmt: skip
        anggota.append(
            {"nik": head, "no_kk": kk(unit, i), "nama": f"Kepala {i}", "jenis_kelamin": "L",
             "tanggal_lahir": "1990-05-15", "status_pekerjaan": "bekerja", "lapangan_usaha": "G"}
        )  # fmt: skip
        anggota.append(
            {"nik": spouse, "no_kk": kk(unit, i), "nama": f"Pasangan {i}", "jenis_kelamin": "P",
             "tanggal_lahir": "1992-05-15", "status_pekerjaan": "mengurus_rumah_tangga",
             "lapangan_usaha": ""}
        )  # fmt: skip
        bantuan.append(
            {"no_kk": kk(unit, i), "nik": "", "kode_program": "PKH",
             "tanggal_salur": "2025-03-10", "nilai": "750000"}
        )  # fmt: skip
    return {"keluarga": keluarga, "anggota": anggota, "bantuan": bantuan}


def manifest(
    unit: str = "64.74.02", period: str = "2025-03", sent: str = "2025-04-03T09:12:00+08:00"
) -> dict:
    return {
        "kode_wilayah": unit,
        "periode": period,
        "dikirim_pada": sent,
        "petugas": "Operator Uji",
    }


def _csv_text(
    rows: list[dict], columns: list[str], delimiter: str, header: list[str] | None
) -> str:
    def cell(value: object) -> str:
        text = "" if value is None else str(value)
        if delimiter in text or '"' in text or "\n" in text:
            text = '"' + text.replace('"', '""') + '"'
        return text

    lines = [delimiter.join(header or columns)]
    lines += [delimiter.join(cell(row.get(c, "")) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def write_submission(
    landing: Path,
    name: str,
    data: dict | None = None,
    manifest_data: dict | str | None = None,
    *,
    fmt: str = "csv",
    encoding: str = "utf-8",
    delimiter: str = ",",
    bom: bool = False,
    crlf: bool = False,
    headers: dict[str, list[str]] | None = None,
    omit: tuple[str, ...] = (),
    as_zip: str | None = None,  # None, "root" or "top-folder"
    numeric_cells: dict[str, set[tuple[int, str]]] | None = None,
) -> Path:
    """One submission; ``manifest.json`` is written last, as upload tools do."""
    data = copy.deepcopy(data if data is not None else register())
    folder = landing / (f".{name}.staging" if as_zip else name)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        for table, columns in COLUMNS.items():
            if f"{table}.csv" in omit:
                continue
            text = _csv_text(data[table], columns, delimiter, (headers or {}).get(table))
            if crlf:
                text = text.replace("\n", "\r\n")
            raw = text.encode(encoding)
            (folder / f"{table}.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + raw)
    else:
        write_xlsx(folder / f"register_{name}.xlsx", data, numeric_cells or {})
    if manifest_data is not None or "manifest.json" not in omit:
        body = manifest_data if manifest_data is not None else manifest()
        text = body if isinstance(body, str) else json.dumps(body)
        (folder / "manifest.json").write_text(text, encoding="utf-8")
    if not as_zip:
        return folder
    target = landing / f"{name}.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.iterdir()):
            inside = path.name if as_zip == "root" else f"{name}/{path.name}"
            archive.write(path, inside)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return target


def write_xlsx(path: Path, data: dict, numeric_cells: dict[str, set[tuple[int, str]]]) -> None:
    """A workbook as Excel writes it: dates as native dates, chosen cells as numbers."""
    import datetime as dt

    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for table, columns in COLUMNS.items():
        sheet = workbook.create_sheet(table)
        sheet.append(columns)
        for index, row in enumerate(data[table]):
            values = []
            for column in columns:
                value = row.get(column, "") or None
                if value and column.startswith("tanggal_"):
                    with contextlib.suppress(ValueError):
                        value = dt.date.fromisoformat(value)
                if (index, column) in numeric_cells.get(table, set()):
                    value = float(value)
                values.append(value)
            sheet.append(values)
    workbook.save(path)
