"""Raw landing: every extract written as it arrived, one folder per (source, run), with a
manifest. Nothing received is lost, and a run can be replayed from here without the source.

    var/landing/<source>/<run>/page-00001.jsonl   one raw record per line, as received
    var/landing/<source>/<run>/manifest.json      written last: its presence means complete

Files are written to a temporary name and renamed, so a crash never leaves a half page
that looks whole.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from joinedup.paths import landing_dir

MANIFEST = "manifest.json"
PROGRESS = "progress.json"  # the pages landed so far by an unfinished run


def safe_run_id(run_id: str) -> str:
    """A run id usable as a folder name (Airflow's contain ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)


@dataclass
class PageEntry:
    file: str
    origin: str
    rows: int
    sha256: str
    cursor: str | None = None  # the source's watermark after this page


@dataclass
class Manifest:
    source_system: str
    run_id: str
    cursor_before: str | None
    cursor_after: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    completed_at: str | None = None
    pages: list[PageEntry] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pages)

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for page in self.pages:
            digest.update(page.sha256.encode())
        return digest.hexdigest()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(rows=self.rows, sha256=self.sha256)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Manifest":
        data = {k: v for k, v in data.items() if k not in ("rows", "sha256")}
        data["pages"] = [PageEntry(**p) for p in data.get("pages", [])]
        return cls(**data)


def atomic_write(path: Path, data: bytes, temp_suffix: str = ".tmp") -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the whole new one, never
    half: written beside it under ``temp_suffix``, synced to disk, then renamed over it."""
    tmp = path.with_name(path.name + temp_suffix)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class LandingWriter:
    """Lands the pages of one (source, run). Re-opening an unfinished run keeps the pages
    already landed (they may have been acknowledged to the source) and resumes from the
    cursor after the last of them, so nothing is fetched twice and nothing is lost.

    Order per page: page file, then ``progress.json``, then the caller acknowledges it to the
    source. A page file not yet in progress.json was never acknowledged: it is dropped and
    fetched again."""

    def __init__(self, source_system: str, run_id: str, cursor_before: str | None) -> None:
        self.folder = landing_dir() / source_system / safe_run_id(run_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob("*.tmp"):
            stale.unlink()
        pages: list[PageEntry] = []
        progress = self.folder / PROGRESS
        if progress.exists():
            pages = [PageEntry(**p) for p in json.loads(progress.read_text(encoding="utf-8"))["pages"]]
        known = {p.file for p in pages}
        for orphan in self.folder.glob("page-*.jsonl"):
            if orphan.name not in known:
                orphan.unlink()
        self.manifest = Manifest(source_system, run_id, cursor_before, pages=pages)

    @property
    def resume_cursor(self) -> str | None:
        """Where a resumed run continues: the cursor after the last landed page, if any."""
        return next((p.cursor for p in reversed(self.manifest.pages) if p.cursor), None)

    def write_page(self, records: list[dict[str, Any]], origin: str, cursor: str | None = None) -> PageEntry:
        body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode("utf-8")
        name = f"page-{len(self.manifest.pages) + 1:05d}.jsonl"
        atomic_write(self.folder / name, body)
        entry = PageEntry(name, origin, len(records), hashlib.sha256(body).hexdigest(), cursor)
        self.manifest.pages.append(entry)
        atomic_write(self.folder / PROGRESS, json.dumps({"pages": [asdict(p) for p in self.manifest.pages]}).encode())
        return entry

    def complete(self, cursor_after: str | None) -> Manifest:
        self.manifest.cursor_after = cursor_after
        self.manifest.completed_at = datetime.now(timezone.utc).isoformat()
        atomic_write(self.folder / MANIFEST, json.dumps(self.manifest.to_json(), indent=2).encode())
        (self.folder / PROGRESS).unlink(missing_ok=True)
        return self.manifest


def completed_manifest(source_system: str, run_id: str) -> Manifest | None:
    path = landing_dir() / source_system / safe_run_id(run_id) / MANIFEST
    if not path.exists():
        return None
    return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))


def manifest_folder(manifest: Manifest) -> Path:
    return landing_dir() / manifest.source_system / safe_run_id(manifest.run_id)


@dataclass
class LandedRecord:
    file: str
    row: int  # 1-based line in the page file
    record: dict[str, Any]


def page_lines(body: bytes) -> list[str]:
    """A landed page's records, one per line. Split on "\\n" only: the writer keeps non-ASCII
    text as it is, so a value may hold U+2028, U+0085 or a form feed, which ``splitlines``
    would also break at (one record read back as three, and a parse error)."""
    text = body.decode("utf-8")
    return (text[:-1] if text.endswith("\n") else text).split("\n") if text else []


def landed_pages(manifest: Manifest, verify: bool = True) -> Iterator[tuple[PageEntry, list[str]]]:
    """Each page of a run with its lines, in the order received. With ``verify`` each page's
    checksum is checked first: a landing file changed after the fact is an error."""
    folder = manifest_folder(manifest)
    for page in manifest.pages:
        body = (folder / page.file).read_bytes()
        if verify and hashlib.sha256(body).hexdigest() != page.sha256:
            raise ValueError(f"landing file {folder / page.file} does not match its manifest checksum")
        yield page, page_lines(body)


def read_landed(manifest: Manifest, verify: bool = True) -> Iterator[LandedRecord]:
    """The landed records of a run, in the order received (pages checked as ``landed_pages``)."""
    for page, lines in landed_pages(manifest, verify):
        for row, line in enumerate(lines, start=1):
            yield LandedRecord(f"{manifest.source_system}/{safe_run_id(manifest.run_id)}/{page.file}", row, json.loads(line))
