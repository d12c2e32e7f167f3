"""XML file drops (kind ``xml``): one file per extract, streamed, validated, counted.

    kind: xml
    options:
      drop_folder: drops/socialcare
      file_pattern: "socialcare_*.xml"
      record_element: Client               # local name of the element holding one record
      xsd: sources/socialcare.xsd          # under schemas/; validated while streaming
      count_attribute: recordCount         # the root's claim of how many records it holds
      fields: [ClientId, GivenName, ...]   # every record gets these keys (absent element = None)

Why streaming: ``lxml.etree.iterparse`` with each record element cleared once read keeps
memory flat whatever the file size, and lxml validates against the XSD in the same pass. The
parser never resolves entities, never loads a DTD, never touches the network and refuses
huge text nodes; a file with a DOCTYPE at all is rejected (an extract has no use for one, and
that is how XXE and "billion laughs" files arrive). Messages name the file, the line and the
element, never the values (social care data is special-category).
"""
from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from lxml import etree
from pydantic import Field

from joinedup.adapters.files import DropFolderOptions, FileDropAdapter, RejectedFile
from joinedup.paths import project_root

_ELEMENT_IN_MESSAGE = re.compile(r"Element '(?:\{[^}]*\})?([\w.-]+)'")


class XmlOptions(DropFolderOptions):
    record_element: str = Field(description="Local name of the element that holds one record (e.g. Client).")
    xsd: str | None = Field(None, description="XML Schema file under schemas/ the file must satisfy.")
    count_attribute: str | None = Field(None, description="Attribute of the root element that states the record count.")
    fields: list[str] | None = Field(None, description="Keys every record gets (an absent element is None).")


def _schema_path(relative: str) -> Path:
    root = (project_root() / "schemas").resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise RejectedFile(f"xsd {relative} is outside schemas/")
    return path


_SCHEMAS: dict[tuple[str, float], etree.XMLSchema] = {}


def load_schema(relative: str) -> etree.XMLSchema:
    """The XSD under schemas/, parsed with entities off; cached per file and modification time."""
    path = _schema_path(relative)
    if not path.is_file():
        raise FileNotFoundError(f"XSD {path} not found (options.xsd is relative to schemas/)")
    key = (str(path), path.stat().st_mtime)
    if key not in _SCHEMAS:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
        if len(_SCHEMAS) > 16:  # bounded: a long-lived worker sees few schemas
            _SCHEMAS.clear()
        _SCHEMAS[key] = etree.XMLSchema(etree.parse(str(path), parser))
    return _SCHEMAS[key]


def _local(tag: Any) -> str:
    return _local_name(tag) if isinstance(tag, str) else ""


@lru_cache(maxsize=1024)
def _local_name(tag: str) -> str:
    """An element tag's local name: an extract repeats a few tags on every record (a fifth of
    reading a file went to building a QName for each element)."""
    return etree.QName(tag).localname


def describe_xml_error(exc: etree.XMLSyntaxError, name: str) -> str:
    """Line and what broke, without values: schema messages quote the offending data."""
    entry = exc.error_log[0] if len(exc.error_log) else None
    line = getattr(exc, "lineno", None) or (entry.line if entry else "?")
    domain = entry.domain_name if entry else ""
    if domain.startswith("SCHEMAS"):
        element = _ELEMENT_IN_MESSAGE.search(entry.message or "")
        return (f"{name}: does not satisfy the XSD at line {line}, element "
                f"{element.group(1) if element else '?'} (value not shown: it may be personal data)")
    message = (exc.msg or str(exc)).split("\n")[0]
    if "Entity" in message or "entity" in message:
        # libxml2 may refuse an entity bomb while still reading the DOCTYPE (2.14 with lxml
        # 6.1 does), before the root element where the DOCTYPE check below runs: same verdict.
        return _doctype_refusal(name, f"an entity declaration or reference (line {line})")
    # libxml2's own text quotes tag names, and text broken by a stray '<' becomes a tag name:
    # only its error code is shown (e.g. ERR_TAG_NAME_MISMATCH), never its message.
    code = entry.type_name if entry is not None else "ERR_PARSER"
    what = _PLAIN_XML_ERRORS.get(code, "the file is malformed or truncated")
    return f"{name}: not well-formed XML at line {line}: {what} ({code})"


def _doctype_refusal(name: str, found: str) -> str:
    return (f"{name}: has {found}; extracts must not declare a DOCTYPE, a DTD or entities "
            "(refused: possible XXE / entity bomb)")


_PLAIN_XML_ERRORS = {
    "ERR_INVALID_ENCODING": "Invalid bytes for the declared encoding (two encodings in one file?)",
    "ERR_TAG_NAME_MISMATCH": "an end tag does not match its start tag (malformed or truncated)",
    "ERR_TAG_NOT_FINISHED": "an element is never closed (the file is truncated)",
    "ERR_DOCUMENT_END": "content after the root element",
    "ERR_DOCUMENT_EMPTY": "the file is empty",
    "ERR_INVALID_CHAR": "a character XML does not allow (a NUL or control character)",
    "ERR_INVALID_CHARREF": "a character reference XML does not allow (such as &#0;)",
}


class ChunkValidator:
    """XSD validation in bounded memory: records are validated in chunks, each inside a copy of
    the root element (same name, attributes and namespaces).

    Why not ``iterparse(schema=...)``: lxml 6 then lets some truncated files through without an
    error and hides the parse error of others. This assumes what extracts look like: a root
    whose content is a sequence of record elements."""

    SIZE = 1000

    def __init__(self, schema: etree.XMLSchema, root: etree._Element, name: str) -> None:
        self.schema, self.name = schema, name
        self.tag, self.attrib, self.nsmap = root.tag, dict(root.attrib), dict(root.nsmap)
        self.holder = self._new_holder()
        self.count = 0
        self.validated = False

    def _new_holder(self) -> etree._Element:
        return etree.Element(self.tag, self.attrib, nsmap=self.nsmap)

    def add(self, record: etree._Element) -> None:
        self.holder.append(copy.deepcopy(record))
        self.count += 1
        if self.count >= self.SIZE:
            self.flush()

    def flush(self) -> None:
        if self.count == 0 and self.validated:
            return
        if not self.schema.validate(self.holder):
            entry = self.schema.error_log[0]
            element = _ELEMENT_IN_MESSAGE.search(entry.message or "")
            raise RejectedFile(f"{self.name}: does not satisfy the XSD at line {entry.line}, element "
                               f"{element.group(1) if element else '?'} ({len(self.schema.error_log)} error(s) in "
                               "this chunk; values not shown: they may be personal data)")
        self.holder, self.count, self.validated = self._new_holder(), 0, True


class XmlFileAdapter(FileDropAdapter):
    """Streams each dropped XML file into records: ``{child local name: text}``."""

    Options: ClassVar[type[XmlOptions]] = XmlOptions
    options: XmlOptions

    def read_file(self, path: Path) -> list[dict[str, Any]]:
        opts = self.options
        schema = load_schema(opts.xsd) if opts.xsd else None
        name = path.name
        records: list[dict[str, Any]] = []
        claimed: str | None = None
        root: etree._Element | None = None
        closed = False
        chunk: ChunkValidator | None = None
        template = dict.fromkeys(opts.fields) if opts.fields else {}
        etree.clear_error_log()
        try:
            context = etree.iterparse(
                str(path), events=("start", "end"), resolve_entities=False, no_network=True,
                huge_tree=False, load_dtd=False, dtd_validation=False, remove_comments=True, remove_pis=True,
            )
            for event, elem in context:
                if root is None:
                    root = elem
                    info = elem.getroottree().docinfo
                    if info.doctype or info.internalDTD is not None or info.system_url:
                        raise RejectedFile(_doctype_refusal(name, "a DOCTYPE"))
                    if opts.count_attribute:
                        claimed = elem.get(opts.count_attribute)
                    if schema is not None:
                        chunk = ChunkValidator(schema, elem, name)
                    continue
                if event == "end" and elem is root:
                    closed = True
                    continue
                if event != "end" or _local(elem.tag) != opts.record_element:
                    continue
                record = dict(template)
                for child in elem:
                    if not isinstance(child.tag, str):
                        continue
                    if len(child):
                        raise RejectedFile(f"{name}: record {len(records) + 1} has nested element "
                                           f"{_local(child.tag)}; records must be flat")
                    record[_local(child.tag)] = child.text if child.text not in (None, "") else None
                records.append(record)
                if chunk is not None:
                    chunk.add(elem)
                elem.clear()  # bounded memory: drop what has been read
                while elem.getprevious() is not None:
                    del elem.getparent()[0]
        except etree.XMLSyntaxError as exc:
            raise RejectedFile(describe_xml_error(exc, name)) from None
        except ValueError:  # lxml refuses an element name libxml2 let through (e.g. 'a:' unbound)
            raise RejectedFile(f"{name}: an element name is not valid XML near record {len(records) + 1} "
                               "(the file is malformed)") from None
        if root is None:
            raise RejectedFile(f"{name}: the file is empty")
        if not closed:
            raise RejectedFile(f"{name}: the root element is never closed (the file is truncated)")
        if chunk is not None:
            chunk.flush()
        if opts.count_attribute:
            if claimed is None or not claimed.strip().isdigit():
                raise RejectedFile(f"{name}: the root has no numeric {opts.count_attribute} attribute")
            if int(claimed) != len(records):
                raise RejectedFile(f"{name}: {opts.count_attribute} says {int(claimed)} record(s) but the file "
                                   f"holds {len(records)} (incomplete or altered extract)")
        return records

    def parse(self, text: str, name: str) -> list[dict[str, Any]]:  # pragma: no cover - read_file streams
        raise NotImplementedError("XmlFileAdapter streams from the file; use read_file")
