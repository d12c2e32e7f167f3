"""Fixed-width file drops (kind ``fixed_width``): a layout file says where each field sits.

    kind: fixed_width
    options:
      drop_folder: drops/hr
      file_pattern: "hr_*.dat"
      layout: sources/hr_layout.yaml       # under schemas/: encoding, record length, fields

The layout (the supplier's file specification, as YAML) declares the encoding, the line
terminator, the record length and the fields of the header (``H``), detail (``D``) and trailer
(``T``) records: ``{name, start (1-based), width, value?}``; a field with a ``value`` is the
record-type marker. A file is accepted whole or not at all: a short or long line (a truncated
transfer, or UTF-8 text pasted into a Windows-1252 file, which changes line lengths), a missing
header or trailer, or a trailer count that disagrees with the detail lines moves it to
``rejected/`` with the reason. Values are stripped; blank values become None.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from joinedup.adapters.files import DropFolderOptions, FileDropAdapter, RejectedFile, decode
from joinedup.paths import project_root


class LayoutField(BaseModel):
    model_config = ConfigDict(extra="allow")  # format/values notes of the spec are kept, not used
    name: str
    start: int = Field(ge=1)
    width: int = Field(ge=1)
    value: str | None = None


class Layout(BaseModel):
    """A fixed-width file specification. Fields must be contiguous and inside the record."""

    model_config = ConfigDict(extra="allow")
    encoding: str = "cp1252"
    line_terminator: str = "\r\n"
    record_length: int = Field(ge=1)
    header: list[LayoutField] = Field(default_factory=list)
    detail: list[LayoutField]
    trailer: list[LayoutField] = Field(default_factory=list)
    count_field: str = Field("RECORD_COUNT", description="Trailer field holding the number of detail records.")

    @model_validator(mode="after")
    def _contiguous(self) -> "Layout":
        for part in ("header", "detail", "trailer"):
            column = 1
            for f in getattr(self, part):
                if f.start != column:
                    raise ValueError(f"{part} field {f.name} starts at column {f.start}, expected {column} "
                                     "(fields must be contiguous)")
                column += f.width
            if column - 1 > self.record_length:
                raise ValueError(f"{part} fields end at column {column - 1}, past record_length {self.record_length}")
            if getattr(self, part) and getattr(self, part)[0].value is None:
                raise ValueError(f"the first {part} field must carry the record type as its 'value'")
        if self.trailer and self.count_field not in {f.name for f in self.trailer}:
            raise ValueError(f"count_field {self.count_field} is not a trailer field")
        return self


@dataclass(frozen=True)
class _Slices:
    """Precomputed (name, start, end) for fast slicing."""

    marker: str
    fields: tuple[tuple[str, int, int], ...]


def load_layout(relative: str) -> Layout:
    root = (project_root() / "schemas").resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise FileNotFoundError(f"layout {relative} not found under {root}")
    try:
        return Layout.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise ValueError(f"layout {path}: {exc}") from None


class FixedWidthOptions(DropFolderOptions):
    layout: str = Field(description="Layout YAML under schemas/ (e.g. sources/hr_layout.yaml).")


class FixedWidthAdapter(FileDropAdapter):
    """Each dropped file -> its detail records, after header, trailer and length checks."""

    Options: ClassVar[type[FixedWidthOptions]] = FixedWidthOptions
    options: FixedWidthOptions

    def __init__(self, config, options: FixedWidthOptions) -> None:  # noqa: ANN001
        super().__init__(config, options)
        self.layout = load_layout(options.layout)
        self._parts = {part: self._slices(getattr(self.layout, part))
                       for part in ("header", "detail", "trailer") if getattr(self.layout, part)}

    @staticmethod
    def _slices(fields: list[LayoutField]) -> _Slices:
        marker = fields[0].value or ""
        return _Slices(marker, tuple((f.name, f.start - 1, f.start - 1 + f.width) for f in fields[1:]))

    def read_file(self, path: Path) -> list[dict[str, Any]]:
        encoding = self.layout.encoding if self.options.encoding == "auto" else self.options.encoding
        return self.parse(decode(path.read_bytes(), encoding, path.name), path.name)  # type: ignore[arg-type]

    def parse(self, text: str, name: str) -> list[dict[str, Any]]:
        layout, eol = self.layout, self.layout.line_terminator
        if not text:
            raise RejectedFile(f"{name}: the file is empty")
        if not text.endswith(eol):
            raise RejectedFile(f"{name}: the last line has no line end (the file is truncated)")
        lines = text[: -len(eol)].split(eol)
        header, detail, trailer = (self._parts.get(p) for p in ("header", "detail", "trailer"))
        assert detail is not None
        length = layout.record_length
        first = 0
        if header is not None:
            if not lines[0].startswith(header.marker):
                raise RejectedFile(f"{name}: line 1 is not a header record ({header.marker!r} expected)")
            first = 1
        last = len(lines)
        if trailer is not None:
            if len(lines) <= first or not lines[-1].startswith(trailer.marker):
                raise RejectedFile(f"{name}: the last line is not a trailer record ({trailer.marker!r} expected); "
                                   "the file is truncated")
            last = len(lines) - 1
        for number, line in enumerate(lines, start=1):
            if len(line) != length:
                raise RejectedFile(f"{name}: line {number} is {len(line)} characters long, the layout says {length} "
                                   "(short or long line: truncated, or text in another encoding)")
        records = []
        marker, fields = detail.marker, detail.fields
        for number in range(first, last):
            line = lines[number]
            if not line.startswith(marker):
                raise RejectedFile(f"{name}: line {number + 1} has record type {line[:1]!r}, expected "
                                   f"{marker!r} between header and trailer")
            records.append({field: (line[a:b].strip() or None) for field, a, b in fields})
        if trailer is not None:
            counts = {f: lines[-1][a:b].strip() for f, a, b in trailer.fields}
            claimed = counts.get(layout.count_field, "")
            if not claimed.isdigit():
                raise RejectedFile(f"{name}: trailer {layout.count_field} is not a number")
            if int(claimed) != len(records):
                raise RejectedFile(f"{name}: trailer says {int(claimed)} record(s), the file holds {len(records)} "
                                   "(incomplete or altered extract)")
        return records
