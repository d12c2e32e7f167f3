"""File-drop adapters: a source system leaves files in a folder; each file is one page.

A file is picked up only once it is complete (the writer renames it into place), read with
its declared or detected encoding, and after landing moved to ``processed/``. A file that
cannot be read whole (truncated, wrong encoding, bad layout) is moved to ``rejected/`` with a
``.reason.txt`` beside it: never silently dropped, never half-loaded.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from joinedup.adapters.base import FatalSourceError, Health, Page
from joinedup.adapters.config import SourceConfig
from joinedup.paths import var_dir

log = logging.getLogger(__name__)

Encoding = Literal["auto", "utf-8", "utf-8-sig", "cp1252"]


class RejectedFile(Exception):
    """This file cannot be loaded as it is; it goes to rejected/ with this reason."""


class DropFolderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drop_folder: str = Field(description="Folder the source drops files in; relative paths are under var/.")
    file_pattern: str = Field("*", description="Glob of the files to pick up, e.g. 'hr_*.dat'.")
    encoding: Encoding = "auto"

    @field_validator("file_pattern")
    @classmethod
    def _pattern_stays_in_the_folder(cls, pattern: str) -> str:
        """A pattern is a file name glob: no folders, no '..', nothing absolute (path traversal)."""
        if not pattern or "/" in pattern or "\\" in pattern or pattern.startswith("..") or "\x00" in pattern:
            raise ValueError("file_pattern must be a file name glob inside drop_folder, such as 'hr_*.dat' "
                             "(no '/', no '..')")
        return pattern

    def folder(self) -> Path:
        path = Path(self.drop_folder)
        return path if path.is_absolute() else var_dir() / path


def decode(data: bytes, encoding: Encoding, name: str) -> str:
    """Bytes -> text. ``auto`` takes UTF-8 (with or without BOM) when it decodes cleanly and
    Windows-1252 otherwise; bytes that decode in neither reject the file."""
    candidates = ["utf-8-sig", "cp1252"] if encoding == "auto" else [encoding]
    for enc in candidates:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as exc:
            last = exc
            continue
        if encoding == "auto" and enc == "cp1252":
            mixed = _UTF8_SEQUENCE.search(data)
            if mixed:  # not UTF-8 as a whole, yet UTF-8 in places: read as cp1252 it would be mojibake
                raise RejectedFile(f"{name}: mixed encodings: UTF-8 text at byte {mixed.start()} in a file that is "
                                   "not UTF-8 throughout; ask the source for one encoding (or set encoding: cp1252 "
                                   "if the file really is Windows-1252)")
        return text
    raise RejectedFile(f"{name}: byte {last.start} cannot be decoded as {' or '.join(candidates)}")


# A UTF-8 encoded letter (2 or 3 bytes). In Windows-1252 these read as 'Ã©', 'â€™': text no
# source writes on purpose, so their presence in a non-UTF-8 file means two encodings in one.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}")


class FileDropAdapter:
    """Shared drop-folder behaviour; a subclass implements ``parse(text, name)``."""

    Options: ClassVar[type[DropFolderOptions]] = DropFolderOptions

    def __init__(self, config: SourceConfig, options: DropFolderOptions) -> None:
        self.config = config
        self.options = options
        self.folder = options.folder()

    # -- what a subclass provides -------------------------------------------------------
    def parse(self, text: str, name: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def read_file(self, path: Path) -> list[dict[str, Any]]:
        return self.parse(decode(path.read_bytes(), self.options.encoding, path.name), path.name)

    # -- the Adapter protocol -------------------------------------------------------------
    def pending_files(self) -> list[Path]:
        if not self.folder.is_dir():
            raise FatalSourceError(f"source {self.config.name}: drop folder {self.folder} does not exist")
        files = []
        for path in sorted(self.folder.glob(self.options.file_pattern)):
            # Only regular files directly in the folder; never follow links out of it.
            if path.parent != self.folder or path.name.startswith(".") or path.name.endswith((".tmp", ".part")):
                continue  # elsewhere, or still being written
            if not path.is_symlink() and not path.is_file():
                continue  # a folder (processed/, rejected/) or a device
            files.append(path)
        return files

    def extract(self, cursor: str | None) -> Iterator[Page]:
        for path in self.pending_files():
            if path.is_symlink():  # a link could point anywhere (/etc/passwd): refused, kept, said so
                self.reject(path, f"{path.name}: is a symbolic link; drop files must be regular files "
                                  "(links are not followed)")
                continue
            try:
                records = self.read_file(path)
            except RejectedFile as exc:
                self.reject(path, str(exc))
                continue
            yield Page(records=records, cursor=cursor, origin=path.name, meta={"path": str(path)})

    def acknowledge(self, page: Page) -> None:
        self._move(Path(page.meta["path"]), "processed")

    def reject(self, path: Path, reason: str) -> None:
        target = self._move(path, "rejected")
        target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
        log.warning("source %s: file %s rejected: %s", self.config.name, path.name, reason)

    def health(self) -> Health:
        if not self.folder.is_dir():
            return Health(False, f"drop folder {self.folder} does not exist")
        return Health(True, f"{len(self.pending_files())} file(s) waiting in {self.folder}")

    def _move(self, path: Path, sub: str) -> Path:
        dest_dir = self.folder / sub
        dest_dir.mkdir(exist_ok=True)
        target = dest_dir / path.name
        n = 1
        while target.exists():  # never overwrite an earlier file of the same name
            target = dest_dir / f"{path.stem}.{n}{path.suffix}"
            n += 1
        os.replace(path, target)  # atomic within one file system
        return target


class CsvOptions(DropFolderOptions):
    delimiter: str = Field(",", min_length=1, max_length=1)


class CsvAdapter(FileDropAdapter):
    """Delimited text files with a header row; every value is kept as text."""

    Options: ClassVar[type[CsvOptions]] = CsvOptions
    options: CsvOptions

    def parse(self, text: str, name: str) -> list[dict[str, Any]]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.options.delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise RejectedFile(f"{name}: the file is empty (no header row)") from None
        except csv.Error as exc:
            raise RejectedFile(f"{name}: header row is not valid CSV ({exc})") from None
        header = [h.strip() for h in header]
        if len(set(header)) != len(header) or "" in header:
            raise RejectedFile(f"{name}: header has blank or repeated column names")
        records = []
        try:
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise RejectedFile(
                        f"{name}: row {line_no} has {len(row)} fields, the header has {len(header)} "
                        "(truncated or malformed file)"
                    )
                records.append({k: (v if v != "" else None) for k, v in zip(header, row)})
        except csv.Error as exc:
            raise RejectedFile(f"{name}: not valid CSV near row {reader.line_num} ({exc})") from None
        if not text.endswith(("\n", "\r")) and records:
            raise RejectedFile(f"{name}: the last line has no line end (the file looks truncated)")
        return records
