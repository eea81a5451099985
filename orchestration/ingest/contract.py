"""The submission contract (``shared/contracts/submission.md``): every rule of the input
standard is stated here, once.

Columns and their types, the working age, the manifest's rules, reason codes and quarantine
causes with the bilingual (Indonesian / English) words operators read in their reports.
:mod:`validate` turns the column rules into DuckDB SQL; ``docs/submission-contract.md`` says
where each rule is applied.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from orchestration.settings import WITA

TABLES = ("keluarga", "anggota", "bantuan")

EMPLOYMENT_STATUSES = ("bekerja", "menganggur", "sekolah", "mengurus_rumah_tangga", "lainnya")
INDUSTRY_SECTIONS = tuple("ABCDEFGHIJKLMNOPQRSTU")
REJECT_SHARE_LIMIT = 0.10  # more than this share of keluarga or anggota rejected: quarantine
# status_pekerjaan is required from this age (in full years at the period's last day), empty
# below it; the warehouse counts the labour force among members of this age or more
WORKING_AGE = 15
# a member older than this at the period's last day is a typing error (tanggal_lahir)
MAX_AGE = 130
# dikirim_pada may be this much later than the moment the submission was received (clocks of
# upload tools drift); later than that, it is invalid: it would supersede every real revision
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # kk | nik | name | desa | int | rupiah | date | category | program
    required: bool = True
    personal: bool = False
    low: int | None = None
    high: int | None = None
    values: tuple[str, ...] = field(default_factory=tuple)


SCHEMA: dict[str, tuple[Column, ...]] = {
    "keluarga": (
        Column("no_kk", "kk", personal=True),
        Column("nik_kepala", "nik", personal=True),
        Column("nama_kepala", "name", personal=True),
        Column("kode_desa", "desa"),
        Column("jumlah_anggota", "int", low=1, high=30),
        Column("pengeluaran_per_kapita", "rupiah"),
        Column("desil", "int", required=False, low=1, high=10),
        Column("tanggal_verifikasi", "date", required=False),
    ),
    "anggota": (
        Column("nik", "nik", personal=True),
        Column("no_kk", "kk", personal=True),
        Column("nama", "name", personal=True),
        Column("jenis_kelamin", "category", values=("L", "P")),
        Column("tanggal_lahir", "date"),
        Column("status_pekerjaan", "category", values=EMPLOYMENT_STATUSES),
        Column("lapangan_usaha", "category", values=INDUSTRY_SECTIONS),
    ),
    "bantuan": (
        Column("no_kk", "kk", personal=True),
        Column("nik", "nik", required=False, personal=True),
        Column("kode_program", "program"),
        Column("tanggal_salur", "date"),
        Column("nilai", "rupiah"),
    ),
}

# Kinds whose rejected values are text anybody could have typed (a name where a code belongs):
# kept only pseudonymised, and masked in reports, like personal data.
TEXT_KINDS = ("name", "category", "program")

# Columns whose *presence* in the file is optional (their values are optional too).
OPTIONAL_COLUMNS = {("keluarga", "desil"), ("keluarga", "tanggal_verifikasi"), ("bantuan", "nik")}


def required_columns(table: str) -> list[str]:
    return [c.name for c in SCHEMA[table] if (table, c.name) not in OPTIONAL_COLUMNS]


# --- row reasons -----------------------------------------------------------------------------
# code: (Indonesian, English, what to fix in Indonesian, what to fix in English)
REASONS: dict[str, tuple[str, str, str, str]] = {
    "REQUIRED_MISSING": (
        "Kolom wajib kosong.",
        "A required value is empty.",
        "Isi nilai kolom ini.",
        "Fill in this column.",
    ),
    "VALUE_UNPARSEABLE": (
        "Nilai tidak dapat dibaca sesuai format.",
        "The value cannot be read in the expected format.",
        "Gunakan angka bulat (mis. 1250000 atau Rp 1.250.000; sen hanya ,00) atau tanggal "
        "YYYY-MM-DD / DD/MM/YYYY / DD-MM-YYYY.",
        "Use whole numbers (e.g. 1250000 or Rp 1.250.000; cents only as ,00) or dates "
        "YYYY-MM-DD / DD/MM/YYYY / DD-MM-YYYY.",
    ),
    "VALUE_OUT_OF_RANGE": (
        "Nilai di luar rentang yang diizinkan.",
        "The value is outside the allowed range.",
        "jumlah_anggota 1–30, desil 1–10, rupiah tidak boleh negatif, umur paling tinggi 130 "
        "tahun (periksa tanggal_lahir).",
        "jumlah_anggota 1–30, desil 1–10, rupiah amounts must not be negative, age at most 130 "
        "(check tanggal_lahir).",
    ),
    "NIK_INVALID": (
        "NIK tidak sah: harus 16 digit dengan tanggal lahir DDMMYY pada digit 7–12 "
        "(perempuan: tanggal + 40).",
        "Invalid NIK: it must have 16 digits with a DDMMYY birth date in positions 7–12 "
        "(women: day + 40).",
        "Salin NIK dari KTP/KK sebagai teks 16 digit.",
        "Copy the NIK from the ID card as 16-digit text.",
    ),
    "KK_INVALID": (
        "No. KK tidak sah: harus 16 digit.",
        "Invalid No. KK: it must have 16 digits.",
        "Salin No. KK dari Kartu Keluarga sebagai teks 16 digit.",
        "Copy the No. KK from the family card as 16-digit text.",
    ),
    "ID_NOT_TEXT": (
        "Nomor identitas disimpan sebagai angka (mis. 6.47402E+15): Excel hanya menyimpan 15 "
        "digit, sehingga digit terakhir sudah hilang dan tidak dapat dipulihkan.",
        "The identifier was stored as a number (e.g. 6.47402E+15): Excel keeps only 15 digits, "
        "so the last digit is already lost and cannot be recovered.",
        "Format kolom NIK/No. KK sebagai Teks sebelum menempel data, lalu kirim ulang dari "
        "sumber aslinya.",
        "Format the NIK/No. KK columns as Text before pasting, then resend from the original "
        "source.",
    ),
    "DESA_UNKNOWN": (
        "Kode desa/kelurahan tidak dikenal dalam kode wilayah Kemendagri.",
        "Unknown desa/kelurahan code (not a Kemendagri village code).",
        "Gunakan kode Kemendagri 10 digit, mis. 64.74.02.1005.",
        "Use the 10-digit Kemendagri code, e.g. 64.74.02.1005.",
    ),
    "DESA_OUTSIDE_WILAYAH": (
        "Desa/kelurahan berada di luar wilayah pengirim (kode_wilayah di manifest).",
        "The village lies outside the submitting unit's area (kode_wilayah in the manifest).",
        "Periksa kode desa atau kode_wilayah di manifest.json.",
        "Check the village code or the kode_wilayah in manifest.json.",
    ),
    "CATEGORY_INVALID": (
        "Nilai bukan salah satu kategori yang diizinkan.",
        "The value is not one of the allowed categories.",
        "jenis_kelamin: L/P; status_pekerjaan: bekerja, menganggur, sekolah, "
        "mengurus_rumah_tangga, lainnya; lapangan_usaha: huruf KBLI A–U.",
        "jenis_kelamin: L/P; status_pekerjaan: bekerja, menganggur, sekolah, "
        "mengurus_rumah_tangga, lainnya; lapangan_usaha: KBLI letter A–U.",
    ),
    "NOT_APPLICABLE": (
        "Kolom ini harus kosong untuk baris ini (status_pekerjaan di bawah 15 tahun; "
        "lapangan_usaha jika tidak bekerja).",
        "This column must be empty for this row (status_pekerjaan below age 15; "
        "lapangan_usaha when not working).",
        "Kosongkan kolom ini atau periksa tanggal lahir / status pekerjaan.",
        "Leave this column empty, or check the birth date / employment status.",
    ),
    "PROGRAM_UNKNOWN": (
        "Kode program tidak ada dalam katalog program.",
        "The program code is not in the program catalogue.",
        "Gunakan kode katalog: PKH, BPNT, PBI_JK, PIP, BLT, UEP, PELATIHAN_KERJA, CSR_MODAL.",
        "Use a catalogue code: PKH, BPNT, PBI_JK, PIP, BLT, UEP, PELATIHAN_KERJA, CSR_MODAL.",
    ),
    "DATE_OUT_OF_PERIOD": (
        "Tanggal di luar batas: tanggal_salur harus dalam bulan periode, tanggal_lahir tidak "
        "setelah akhir periode, tanggal_verifikasi tidak setelah dikirim_pada.",
        "Date out of bounds: tanggal_salur must be inside the period's month, tanggal_lahir not "
        "after the period's end, tanggal_verifikasi not after dikirim_pada.",
        "Periksa tanggal dan periode di manifest.json.",
        "Check the date and the period in manifest.json.",
    ),
    "DUPLICATE_KEY": (
        "Kunci ganda: NIK/No. KK yang sama muncul di beberapa baris; semua salinan ditolak.",
        "Duplicate key: the same NIK/No. KK appears on several rows; every copy is rejected.",
        "Hapus baris ganda dan sisakan satu baris yang benar.",
        "Remove the duplicates and keep the one correct row.",
    ),
    "ORPHAN": (
        "Baris ini merujuk keluarga (No. KK) yang tidak diterima dalam kiriman ini.",
        "This row refers to a household (No. KK) that was not accepted in this submission.",
        "Perbaiki baris keluarga tersebut di keluarga.csv, atau No. KK di baris ini.",
        "Fix that household's row in keluarga, or the No. KK on this row.",
    ),
}

# --- quarantine causes ---------------------------------------------------------------------
QUARANTINE_CAUSES: dict[str, tuple[str, str]] = {
    "MANIFEST_MISSING": ("manifest.json tidak ada.", "manifest.json is missing."),
    "MANIFEST_INVALID": ("manifest.json tidak sah.", "manifest.json is invalid."),
    "UNIT_NOT_REGISTERED": (
        "kode_wilayah bukan unit pengirim yang terdaftar.",
        "kode_wilayah is not a registered submitting unit.",
    ),
    "PERIOD_INVALID": (
        "periode salah format (YYYY-MM) atau di masa depan.",
        "periode is malformed (YYYY-MM) or in the future.",
    ),
    "FILE_MISSING": ("Berkas wajib tidak ada.", "A required file is missing."),
    "COLUMN_MISSING": ("Kolom wajib tidak ada.", "A required column is missing."),
    "FILE_UNREADABLE": (
        "Berkas tidak dapat dibaca (biner, encoding salah, atau struktur CSV rusak).",
        "A file cannot be read (binary, wrong encoding, or broken CSV structure).",
    ),
    "KELUARGA_EMPTY": ("keluarga tidak berisi baris.", "keluarga has no rows."),
    "LINK_NOT_ALLOWED": (
        "Kiriman berisi tautan simbolik (symlink); tautan tidak pernah diikuti atau dibaca.",
        "The submission contains a symbolic link; links are never followed or read.",
    ),
    "ZIP_LIMIT_EXCEEDED": (
        "Berkas zip melampaui batas (ukuran setelah diekstrak, rasio kompresi atau jumlah isi).",
        "The zip exceeds a limit (extracted size, compression ratio or number of members).",
    ),
    "INGEST_ERROR": (
        "Kiriman tidak dapat diproses (mis. berkas tidak dapat dibaca); rinciannya di bawah.",
        "The submission could not be processed (e.g. a file cannot be read); details below.",
    ),
    "TOO_MANY_REJECTS": (
        "Lebih dari 10 % baris keluarga atau anggota ditolak: kemungkinan kesalahan format "
        "sistematis.",
        "More than 10 % of the rows of keluarga or anggota were rejected: a systematic format "
        "fault.",
    ),
}


# --- the manifest --------------------------------------------------------------------------
PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def normalise_unit_code(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    code = raw.strip()
    digits = code.replace(".", "")
    if not digits.isdigit() or len(digits) not in (2, 4, 6, 10):
        return None
    parts = [digits[:2], digits[2:4], digits[4:6], digits[6:]]
    return ".".join(p for p in parts if p)


def covers_sql(region: str, code: str) -> str:
    """SQL: the region ``region`` is ``code`` or lies above it in the dotted hierarchy (64.74
    covers 64.74.01 and 64.74.01.1001). The same rule as dbt's ``region_covers`` macro."""
    return f"({code} = {region} or starts_with({code}, {region} || '.'))"


def covers(region: str, code: str) -> bool:
    """``covers_sql`` in Python."""
    return code == region or code.startswith(region + ".")


@dataclass
class Manifest:
    unit_code: str
    period: str
    period_start: dt.date
    period_end: dt.date
    submitted_at: dt.datetime
    raw: dict


def parse_manifest(raw: dict, units: dict[str, str], now: dt.datetime) -> Manifest:
    """The manifest's rules; ``now`` is when the submission was received."""
    for key in ("kode_wilayah", "periode", "dikirim_pada"):
        if raw.get(key) in (None, ""):
            raise QuarantineError("MANIFEST_INVALID", f"manifest.json has no {key}")
    sent_text = raw["dikirim_pada"]
    try:
        submitted_at = dt.datetime.fromisoformat(str(sent_text))
    except ValueError as exc:
        raise QuarantineError(
            "MANIFEST_INVALID", f"dikirim_pada {sent_text!r} is not ISO 8601"
        ) from exc
    if submitted_at.tzinfo is None:
        raise QuarantineError(
            "MANIFEST_INVALID", f"dikirim_pada {sent_text!r} has no UTC offset (WITA is +08:00)"
        )
    if submitted_at > now + CLOCK_SKEW:
        raise QuarantineError(
            "MANIFEST_INVALID",
            f"dikirim_pada {sent_text} is later than the time of receipt "
            f"({now.astimezone(WITA):%Y-%m-%dT%H:%M%z})",
        )
    unit = normalise_unit_code(raw["kode_wilayah"])
    if unit is None or unit not in units:
        raise QuarantineError(
            "UNIT_NOT_REGISTERED", f"kode_wilayah {raw['kode_wilayah']!r} is not a registered unit"
        )
    match = PERIOD_RE.match(str(raw["periode"]).strip())
    if not match:
        raise QuarantineError("PERIOD_INVALID", f"periode {raw['periode']!r} is not YYYY-MM")
    year, month = int(match[1]), int(match[2])
    start = dt.date(year, month, 1)
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    today = now.astimezone(WITA).date()
    if start > today:
        raise QuarantineError("PERIOD_INVALID", f"periode {raw['periode']} is in the future")
    return Manifest(unit, f"{year:04d}-{month:02d}", start, end, submitted_at, raw)


class QuarantineError(Exception):
    """A submission that cannot be trusted as a whole (``counts``: the rows judged, if any)."""

    def __init__(self, cause: str, detail: str, counts: dict | None = None):
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail
        self.counts = counts or {}
