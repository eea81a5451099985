"""One submission as it goes through the stages of ingestion, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from .archive import Received
from .contract import Manifest, QuarantineError, normalise_unit_code
from .landing import display_name


@dataclass
class Submission:
    received: Received
    manifest_raw: dict = field(default_factory=dict)  # manifest.json as sent (if it could be read)
    manifest: Manifest | None = None  # once the contract's manifest rules passed
    sources: dict = field(default_factory=dict)  # table -> read.SourceTable
    counts: dict = field(default_factory=dict)  # table -> rows, accepted, rejected, file, ...
    quarantine: QuarantineError | None = None
    status: str = ""  # accepted | superseded | pending | quarantined (decided in load.decide)
    replaces: str | None = None  # the submission it supersedes
    replaced_by: str | None = None  # the submission that supersedes it
    held_by: tuple | None = None  # pending: (region, approved by, approved at) of the lock

    @property
    def submission_id(self) -> str:
        return self.received.submission_id

    @property
    def landing_name(self) -> str:
        return display_name(self.received.entry.name)

    @property
    def unit_code(self) -> str | None:
        if self.manifest:
            return self.manifest.unit_code
        return normalise_unit_code(self.manifest_raw.get("kode_wilayah"))

    @property
    def period(self) -> str | None:
        return self.manifest.period if self.manifest else None

    @property
    def label(self) -> str:
        """``<unit>_<period>_<id[:12]>``: the name of its report and quarantine folder."""
        return f"{self.unit_code or 'unknown'}_{self.period or 'unknown'}_{self.submission_id[:12]}"

    @property
    def rows_rejected(self) -> int:
        return sum(c["rejected"] for c in self.counts.values())

    @property
    def source_format(self) -> str | None:
        return next((s.fmt for s in self.sources.values()), None)
