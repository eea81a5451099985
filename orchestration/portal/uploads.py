"""An operator's upload, put into ``landing/`` exactly as a unit's own upload tool would: a
folder written aside and renamed into place with its manifest written last, or a zip renamed
into place once complete. The landing sensor and the nightly run treat it like any other.

No name the browser sends reaches a path: files are stored under the contract's own names
(``keluarga.csv``, ``anggota.csv``, ``bantuan.csv``, ``register.xlsx``) in an entry named from
the operator's unit, the period and a random id. The manifest's unit must be the operator's
own; everything else about the files is judged by ingestion, as for any submission.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from orchestration.faults import Refused
from orchestration.ingest.contract import PERIOD_RE, normalise_unit_code
from orchestration.ingest.read import MANIFEST_MAX_BYTES, RATIO_FROM_BYTES
from orchestration.settings import WITA, Settings

CSV_FIELDS = ("keluarga", "anggota", "bantuan")
CHUNK = 1 << 20


class UploadError(Refused):
    """An upload the portal refuses; nothing lands."""


@dataclass(frozen=True)
class Upload:
    upload_id: str
    unit_code: str
    period: str
    landing_name: str


def _copy(source: BinaryIO, target: Path) -> None:
    with open(target, "xb") as out:
        shutil.copyfileobj(source, out, CHUNK)


def _own_unit(manifest: dict, unit: str) -> str:
    """The manifest's period, once its unit is the operator's own."""
    if normalise_unit_code(manifest.get("kode_wilayah")) != unit:
        raise UploadError(
            f"kode_wilayah manifest bukan unit Anda ({unit})",
            f"the manifest's kode_wilayah is not your unit ({unit})",
        )
    period = str(manifest.get("periode", "")).strip()
    if not PERIOD_RE.match(period):
        raise UploadError(
            "periode manifest harus YYYY-MM", "the manifest's periode must be YYYY-MM"
        )
    return period


def _parse_manifest(raw: bytes) -> dict:
    if len(raw) > MANIFEST_MAX_BYTES:
        raise UploadError("manifest.json terlalu besar", "manifest.json is too large")
    try:
        manifest = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UploadError("manifest.json tidak sah", "manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise UploadError("manifest.json tidak sah", "manifest.json is not a JSON object")
    return manifest


def manifest_from_form(unit: str, period: str, petugas: str, catatan: str) -> dict:
    """The manifest the upload form writes for the operator: their unit, sent now (WITA)."""
    manifest = {
        "kode_wilayah": unit,
        "periode": period.strip(),
        "dikirim_pada": dt.datetime.now(WITA).isoformat(timespec="seconds"),
        "petugas": petugas.strip()[:200],
    }
    if catatan.strip():
        manifest["catatan"] = catatan.strip()[:1000]
    _own_unit(manifest, unit)
    return manifest


def _zip_manifest(path: Path, settings: Settings) -> dict:
    """The manifest inside a zip (at its root or in one top folder), read within the limits."""
    limits = settings.zip_limits
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > limits.members:
                raise UploadError(
                    f"zip berisi lebih dari {limits.members} berkas",
                    f"the zip holds more than {limits.members} files",
                )
            if sum(m.file_size for m in members) > limits.total_bytes or any(
                m.file_size > limits.member_bytes
                or (
                    m.file_size > RATIO_FROM_BYTES
                    and m.file_size > limits.ratio * max(1, m.compress_size)
                )
                for m in members
            ):  # what the headers say; ingestion counts the bytes actually unpacked
                raise UploadError(
                    "zip terlalu besar setelah dibuka (batas yang sama dengan pemeriksaan)",
                    "the zip unpacks past the limits ingestion applies",
                )
            if any(stat.S_ISLNK(m.external_attr >> 16) for m in members):
                raise UploadError("zip berisi tautan simbolik", "the zip holds a symbolic link")
            found = [
                m
                for m in members
                if Path(m.filename).name.lower() == "manifest.json"
                and len(Path(m.filename).parts) <= 2
            ]
            if len(found) != 1:
                raise UploadError(
                    "zip harus berisi tepat satu manifest.json",
                    "the zip must hold exactly one manifest.json",
                )
            with archive.open(found[0]) as handle:
                return _parse_manifest(handle.read(MANIFEST_MAX_BYTES + 1))
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
        raise UploadError("berkas zip rusak", "the zip file is damaged") from None


def place(
    settings: Settings,
    unit: str,
    files: dict[str, BinaryIO],
    form_manifest: dict | None,
) -> Upload:
    """Write one upload into landing. ``files`` maps a form field (``keluarga``, ``anggota``,
    ``bantuan``, ``workbook``, ``archive``, ``manifest``) to the uploaded file's content."""
    upload_id = secrets.token_hex(6)
    stamp = dt.datetime.now(WITA).strftime("%Y%m%dT%H%M%S")
    landing = settings.landing
    landing.mkdir(parents=True, exist_ok=True)
    if "archive" in files:
        if set(files) - {"archive"}:
            raise UploadError(
                "kirim zip saja, atau berkas-berkasnya tanpa zip",
                "send either the zip alone or the files without a zip",
            )
        aside = landing / f".portal-{upload_id}.zip.part"
        try:
            _copy(files["archive"], aside)
            period = _own_unit(_zip_manifest(aside, settings), unit)
            name = f"{unit}_{period}_web{stamp}_{upload_id}"
            os.replace(aside, landing / f"{name}.zip")
        finally:
            aside.unlink(missing_ok=True)
        return Upload(upload_id, unit, period, f"{name}.zip")
    if "manifest" in files:
        manifest = _parse_manifest(files["manifest"].read(MANIFEST_MAX_BYTES + 1))
    elif form_manifest is not None:
        manifest = form_manifest
    else:
        raise UploadError("manifest tidak ada", "the manifest is missing")
    period = _own_unit(manifest, unit)
    if "workbook" in files:
        if any(field in files for field in CSV_FIELDS):
            raise UploadError(
                "kirim buku kerja atau tiga CSV, tidak keduanya",
                "send either the workbook or the three CSVs, not both",
            )
    elif not all(field in files for field in CSV_FIELDS):
        raise UploadError(
            "keluarga.csv, anggota.csv dan bantuan.csv wajib (atau satu buku kerja .xlsx)",
            "keluarga.csv, anggota.csv and bantuan.csv are required (or one .xlsx workbook)",
        )
    name = f"{unit}_{period}_web{stamp}_{upload_id}"
    aside = landing / f".portal-{upload_id}.staging"
    aside.mkdir()
    try:
        for field, content in files.items():
            if field in CSV_FIELDS:
                _copy(content, aside / f"{field}.csv")
            elif field == "workbook":
                _copy(content, aside / "register.xlsx")
        # the manifest last: the folder is ready once it is there (as upload tools do)
        (aside / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
        os.rename(aside, landing / name)
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    return Upload(upload_id, unit, period, name)
