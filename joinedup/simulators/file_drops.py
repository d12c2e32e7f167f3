"""The nightly file drops of the synthetic council: the social care XML extract and the HR
fixed-width extract, written the way the real systems write them, plus broken variants.

- Social care: ``socialcare_YYYYMMDD.xml``, UTF-8, one ``SocialCareExtract`` root
  (``extractDate``, ``recordCount``) with one ``Client`` per record, valid against
  ``schemas/sources/socialcare.xsd`` (checked before the file is published).
- HR: ``hr_YYYYMMDD.dat``, Windows-1252, fixed width per ``schemas/sources/hr_layout.yaml``:
  header ``H`` + extract date + system name, ``D`` lines, trailer ``T`` + 9-digit count.

Files are published atomically: written under a temporary dot-name in the drop folder
(``.hr_20240501.dat.partial-<hex>``), flushed to disk, then renamed, so an adapter polling the
folder with the file-name pattern never sees half a file.

The ``corrupt_*`` and ``write_*_attack`` helpers make the broken files the adapters must refuse
loudly: truncated, trailer count that disagrees, malformed XML, XXE, billion laughs, mixed
encodings. They rewrite a published file in place (atomically) or write a new one under the
normal name, so the adapter meets them exactly where it meets a good file.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml
from lxml import etree

from joinedup.simulators.servers import check_layout

log = logging.getLogger(__name__)

SOURCES_DIR = Path(__file__).resolve().parents[2] / "schemas" / "sources"
SOCIALCARE_XSD = SOURCES_DIR / "socialcare.xsd"
HR_LAYOUT = SOURCES_DIR / "hr_layout.yaml"
SOCIALCARE_NS = "http://socialcare.council.example/extract/v1"
SOCIALCARE_FIELDS: tuple[str, ...] = (
    "ClientId", "GivenName", "FamilyName", "PreferredName", "BirthDate", "NHSNumber", "NINumber",
    "Gender", "Address1", "Address2", "Town", "Postcode", "CaseStatus", "LastUpdated",
    "DateOfDeath",
)
SOCIALCARE_OPTIONAL: tuple[str, ...] = ("DateOfDeath",)
"""Added to the extract later (schema evolution): older records may leave it out."""
HR_FIELDS: tuple[str, ...] = (
    "EMPNO", "SURNAME", "FORENAMES", "DOB", "SEX", "NINO", "ADDR1", "ADDR2", "TOWN", "POSTCODE",
    "START_DATE", "LAST_CHANGED", "LEAVE_DATE", "LEAVE_REASON", "DATE_OF_DEATH", "RECORD_STATUS",
)
HR_OPTIONAL: tuple[str, ...] = ("LEAVE_DATE", "LEAVE_REASON", "DATE_OF_DEATH", "RECORD_STATUS")
"""Added to the layout later (leavers, deaths, purge notices): older records may leave them out."""
_NOT_XML_CHAR = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def socialcare_file_name(extract_date: date) -> str:
    return f"socialcare_{extract_date:%Y%m%d}.xml"


def hr_file_name(extract_date: date) -> str:
    return f"hr_{extract_date:%Y%m%d}.dat"


# --------------------------------------------------------------------------------------------
# Atomic publication
# --------------------------------------------------------------------------------------------
def _publish(target: Path, write) -> Path:
    """Call ``write(binary_file)`` on a temporary dot-file beside ``target``, fsync, rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def _publish_bytes(target: Path, content: bytes) -> Path:
    return _publish(target, lambda handle: handle.write(content))


# --------------------------------------------------------------------------------------------
# Social care XML
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def socialcare_schema() -> etree.XMLSchema:
    """The checked-in XSD, parsed with entities off."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    return etree.XMLSchema(etree.parse(str(SOCIALCARE_XSD), parser))


def write_socialcare_extract(records: Sequence[dict], drop_dir: Path, extract_date: date, *,
                             source_system: str = "CASE MANAGEMENT", validate: bool = True) -> Path:
    """Write ``socialcare_YYYYMMDD.xml`` into ``drop_dir`` and return its path.

    Streams the XML (bounded memory); with ``validate`` the written file is checked against
    the XSD before it is published, so the simulator never drops a file its own schema
    rejects (the error names the line, never the data).
    """
    for index, record in enumerate(records):
        check_layout(record, index, SOCIALCARE_FIELDS, "socialcare", SOCIALCARE_OPTIONAL)
    target = Path(drop_dir) / socialcare_file_name(extract_date)
    tag = {name: f"{{{SOCIALCARE_NS}}}{name}" for name in SOCIALCARE_FIELDS}

    def write(handle) -> None:
        with etree.xmlfile(handle, encoding="utf-8") as xf:
            xf.write_declaration()
            attrs = {"extractDate": extract_date.isoformat(), "recordCount": str(len(records)),
                     "sourceSystem": source_system}
            with xf.element(f"{{{SOCIALCARE_NS}}}SocialCareExtract", attrs, nsmap={None: SOCIALCARE_NS}):
                xf.write("\n")
                for record in records:
                    xf.write("  ")
                    with xf.element(f"{{{SOCIALCARE_NS}}}Client"):
                        for name in SOCIALCARE_FIELDS:
                            value = record.get(name)
                            if value is None:
                                continue
                            xf.write("\n    ")
                            with xf.element(tag[name]):
                                xf.write(_NOT_XML_CHAR.sub("\ufffd", value))
                        xf.write("\n  ")
                    xf.write("\n")

    if not validate:
        return _publish(target, write)

    def write_validated(handle) -> None:
        write(handle)
        handle.flush()
        _validate_socialcare_file(Path(handle.name))

    return _publish(target, write_validated)


def _validate_socialcare_file(path: Path) -> None:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    schema = socialcare_schema()
    if not schema.validate(etree.parse(str(path), parser)):
        first = schema.error_log[0] if schema.error_log else None
        where = f"line {first.line}" if first else "unknown line"
        # lxml's messages quote the offending value; report only where and the element.
        element = re.search(r"Element '\{[^}]*\}(\w+)'", first.message) if first else None
        raise ValueError(
            f"social care extract would not validate against {SOCIALCARE_XSD.name}: {where}, element "
            f"{element.group(1) if element else '?'} ({len(schema.error_log)} error(s)); fix the records "
            "(key formats, Gender 1/2/9, CaseStatus open/closed, dates YYYY-MM-DD) or pass validate=False"
        )


# --------------------------------------------------------------------------------------------
# HR fixed width
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FixedWidthField:
    name: str
    start: int  # 1-based column
    width: int
    value: str | None = None  # fixed content (record type)

    @property
    def slice(self) -> slice:
        return slice(self.start - 1, self.start - 1 + self.width)


@dataclass(frozen=True)
class HrLayout:
    encoding: str
    line_terminator: str
    record_length: int
    header: tuple[FixedWidthField, ...]
    detail: tuple[FixedWidthField, ...]
    trailer: tuple[FixedWidthField, ...]

    def field(self, record: str, name: str) -> FixedWidthField:
        for f in getattr(self, record):
            if f.name == name:
                return f
        raise KeyError(f"no field {name!r} in the {record} record of {HR_LAYOUT.name}")


@lru_cache(maxsize=4)
def read_hr_layout(path: Path = HR_LAYOUT) -> HrLayout:
    """Load and check the checked-in layout (fields contiguous, inside the record length)."""
    spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    record_length = int(spec["record_length"])
    parts = {}
    for record in ("header", "detail", "trailer"):
        fields = tuple(FixedWidthField(f["name"], int(f["start"]), int(f["width"]), f.get("value"))
                       for f in spec[record])
        column = 1
        for f in fields:
            if f.start != column or f.width < 1:
                raise ValueError(f"{path}: {record} field {f.name} starts at column {f.start}, expected "
                                 f"{column} (fields must be contiguous, widths >= 1)")
            column += f.width
        if column - 1 > record_length:
            raise ValueError(f"{path}: {record} fields end at column {column - 1}, past record_length {record_length}")
        parts[record] = fields
    names = tuple(f.name for f in parts["detail"] if f.value is None)
    if names != HR_FIELDS:
        raise ValueError(f"{path}: detail fields {list(names)} differ from the HR layout {list(HR_FIELDS)}")
    return HrLayout(spec["encoding"], spec["line_terminator"], record_length,
                    parts["header"], parts["detail"], parts["trailer"])


def _fixed_line(layout: HrLayout, fields: Iterable[FixedWidthField], values: dict) -> str:
    cells = []
    for f in fields:
        value = f.value if f.value is not None else values.get(f.name)
        text = "" if value is None else str(value).replace("\r", " ").replace("\n", " ")
        cells.append(text[:f.width].ljust(f.width))
    return "".join(cells).ljust(layout.record_length)


def write_hr_extract(records: Sequence[dict], drop_dir: Path, extract_date: date, *,
                     system_name: str = "COUNCIL PAYROLL") -> Path:
    """Write ``hr_YYYYMMDD.dat`` (Windows-1252, fixed width) into ``drop_dir``; return its path.

    Values are cut to their width and characters outside Windows-1252 become "?", as the
    payroll system does; the count of cut values is logged (never the values).
    """
    for index, record in enumerate(records):
        check_layout(record, index, HR_FIELDS, "hr", HR_OPTIONAL)
    layout = read_hr_layout()
    target = Path(drop_dir) / hr_file_name(extract_date)
    widths = {f.name: f.width for f in layout.detail}
    eol = layout.line_terminator

    def write(handle) -> None:
        cut = 0
        handle.write((_fixed_line(layout, layout.header, {"EXTRACT_DATE": f"{extract_date:%Y%m%d}",
                                                          "SYSTEM_NAME": system_name}) + eol).encode(layout.encoding))
        for record in records:
            cut += sum(1 for name in HR_FIELDS if record.get(name) is not None and len(record[name]) > widths[name])
            line = _fixed_line(layout, layout.detail, record) + eol
            handle.write(line.encode(layout.encoding, errors="replace"))
        trailer = _fixed_line(layout, layout.trailer, {"RECORD_COUNT": f"{len(records):09d}"}) + eol
        handle.write(trailer.encode(layout.encoding))
        if cut:
            log.info("hr extract %s: %d value(s) cut to their field width", target.name, cut)

    return _publish(target, write)


# --------------------------------------------------------------------------------------------
# Broken variants, for the adapters' tests
# --------------------------------------------------------------------------------------------
def corrupt_truncate(path: Path, *, keep_fraction: float = 0.5) -> Path:
    """Cut the file after ``keep_fraction`` of its bytes (a transfer that died): the HR file
    loses its trailer and ends mid-record; the XML file is no longer well-formed."""
    if not 0 < keep_fraction < 1:
        raise ValueError("keep_fraction must be between 0 and 1 (exclusive)")
    content = Path(path).read_bytes()
    keep = max(1, int(len(content) * keep_fraction))
    # End mid-line, as a dead transfer does: no line terminator, the last line incomplete.
    while keep > 1 and content[keep - 1:keep] in (b"\r", b"\n"):
        keep -= 1
    keep = max(1, keep - 1)
    return _publish_bytes(Path(path), content[:keep])


def corrupt_hr_trailer_count(path: Path, *, delta: int = 1) -> Path:
    """Rewrite the HR trailer so its count disagrees with the D lines by ``delta``."""
    if delta == 0:
        raise ValueError("delta must not be 0: the trailer count has to disagree")
    layout = read_hr_layout()
    eol = layout.line_terminator.encode()
    lines = Path(path).read_bytes().split(eol)
    index = max(i for i, line in enumerate(lines) if line.startswith(b"T"))
    count_field = layout.field("trailer", "RECORD_COUNT")
    old = int(lines[index][count_field.slice])
    new = old + delta
    if new < 0:
        raise ValueError(f"the trailer count {old} + delta {delta} would be negative")
    line = bytearray(lines[index])
    line[count_field.slice] = f"{new:0{count_field.width}d}".encode()
    lines[index] = bytes(line)
    return _publish_bytes(Path(path), eol.join(lines))


def corrupt_malformed_xml(path: Path) -> Path:
    """Break one end tag (``</Client>`` loses its ``>``), so the XML is not well-formed."""
    content = Path(path).read_bytes()
    marker = b"</Client>"
    if marker in content:
        broken = content.replace(marker, b"</Client", 1)
    else:
        end = content.rindex(b">")
        broken = content[:end] + content[end + 1:]
    return _publish_bytes(Path(path), broken)


def corrupt_mixed_encoding(path: Path) -> Path:
    """Re-encode every second line holding non-ASCII text in the *other* encoding: UTF-8 lines
    inside the Windows-1252 HR file, Windows-1252 lines inside the UTF-8 XML file (as happens
    when two extracts are concatenated or a value is pasted from elsewhere). Needs at least
    two lines with characters such as é or ’."""
    path = Path(path)
    native, other = ("utf-8", "cp1252") if path.suffix == ".xml" else ("cp1252", "utf-8")
    lines = path.read_bytes().decode(native).splitlines(keepends=True)
    non_ascii = [i for i, line in enumerate(lines) if not line.isascii()]
    if len(non_ascii) < 2:
        raise ValueError(f"{path.name} has {len(non_ascii)} line(s) with non-ASCII characters; mixing "
                         "encodings needs at least 2 (give records with é or ’)")
    switched = set(non_ascii[1::2])
    out = b"".join(line.encode(other if i in switched else native, errors="replace")
                   for i, line in enumerate(lines))
    return _publish_bytes(path, out)


def write_xxe_attack(drop_dir: Path, extract_date: date, *, target: str = "file:///etc/passwd") -> Path:
    """A social care extract that declares an external entity pointing at ``target`` and uses
    it in a GivenName: a parser that resolves entities would read a local file into the data."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<!DOCTYPE SocialCareExtract [\n  <!ENTITY xxe SYSTEM "{target}">\n]>\n'
        f'<SocialCareExtract xmlns="{SOCIALCARE_NS}" extractDate="{extract_date.isoformat()}" recordCount="1">\n'
        "  <Client>\n    <ClientId>SC0000001</ClientId>\n    <GivenName>&xxe;</GivenName>\n"
        "    <LastUpdated>2024-01-01T00:00:00</LastUpdated>\n  </Client>\n</SocialCareExtract>\n"
    )
    return _publish_bytes(Path(drop_dir) / socialcare_file_name(extract_date), content.encode("utf-8"))


def write_billion_laughs_attack(drop_dir: Path, extract_date: date, *, levels: int = 10) -> Path:
    """A social care extract with the 'billion laughs' entity bomb: ``levels`` nested entities,
    each ten copies of the one before (10 levels = 10^9 'lol's, gigabytes once expanded)."""
    if levels < 2:
        raise ValueError("levels must be >= 2")
    entities = ['  <!ENTITY lol0 "lol">']
    for level in range(1, levels):
        entities.append(f'  <!ENTITY lol{level} "' + f"&lol{level - 1};" * 10 + '">')
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!DOCTYPE SocialCareExtract [\n" + "\n".join(entities) + "\n]>\n"
        f'<SocialCareExtract xmlns="{SOCIALCARE_NS}" extractDate="{extract_date.isoformat()}" recordCount="1">\n'
        f"  <Client>\n    <ClientId>SC0000001</ClientId>\n    <GivenName>&lol{levels - 1};</GivenName>\n"
        "    <LastUpdated>2024-01-01T00:00:00</LastUpdated>\n  </Client>\n</SocialCareExtract>\n"
    )
    return _publish_bytes(Path(drop_dir) / socialcare_file_name(extract_date), content.encode("utf-8"))
