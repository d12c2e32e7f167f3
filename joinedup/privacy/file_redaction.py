"""Rewrite the files the hub holds without one person's records, keeping each file valid.

Each function takes the source-key column (native layout) and the set of erased keys
(normalised: trimmed, upper case) and returns how many records it removed. Values are never
logged or returned: counts and file names only.

- landing pages (``var/landing/<source>/<run>/page-*.jsonl``): rewritten; the manifest (or the
  unfinished run's progress.json) gets the page's new sha256 and row count, so ``read_landed``
  still verifies, and ``erasures.json`` beside it notes when and under which request rows were
  removed (the manifest's own format has no place for it: see the report to the lead);
- the checked work files of a batch (``checked/passed.parquet``, ``checked/failures.json``, and
  a full extract's ``checked/mapped.parquet``, see ``joinedup.mapping.reuse``);
- drop-folder files in ``processed/`` and ``rejected/``: CSV, fixed width (the trailer count
  is corrected) and XML (the count attribute is corrected). A rejected file that cannot be
  parsed (it was rejected for a reason) and holds the key is deleted whole, with a note;
- text reports under var/reports: source keys replaced by ``[erased]``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from lxml import etree

from joinedup.landing import MANIFEST, PROGRESS, atomic_write, page_lines
from joinedup.mapping.reuse import MAPPED
from joinedup.privacy.tombstones import normalise_key

ERASURE_NOTE = "erasures.json"
REDACTED = "[erased]"


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, data, temp_suffix=".erasing")  # its own temporary name, as before


def _matches(value: Any, keys: set[str]) -> bool:
    return value is not None and normalise_key(value) in keys


@dataclass
class PageRewrite:
    """One landing page rewritten: old row number -> new row number for the rows kept."""
    landing_file: str  # "<source>/<run>/<page>", as quarantine rows name it
    removed: int
    row_map: dict[int, int] = field(default_factory=dict)


# -- landing --------------------------------------------------------------------------------
def redact_landing_run(folder: Path, key_column: str, keys: set[str], request: str) -> list[PageRewrite]:
    """Remove the records with these keys from every page of one landed run (one folder)."""
    index_name = MANIFEST if (folder / MANIFEST).exists() else PROGRESS if (folder / PROGRESS).exists() else None
    if index_name is None:
        return []
    index = json.loads((folder / index_name).read_text(encoding="utf-8"))
    rewrites: list[PageRewrite] = []
    for page in index.get("pages", []):
        path = folder / page["file"]
        if not path.exists():
            continue
        lines = page_lines(path.read_bytes())
        kept, row_map = [], {}
        for row, line in enumerate(lines, start=1):
            if _matches(json.loads(line).get(key_column), keys):
                continue
            kept.append(line)
            row_map[row] = len(kept)
        if len(kept) == len(lines):
            continue
        body = "".join(line + "\n" for line in kept).encode("utf-8")
        _atomic_write(path, body)
        page["rows"], page["sha256"] = len(kept), hashlib.sha256(body).hexdigest()
        rewrites.append(PageRewrite(f"{folder.parent.name}/{folder.name}/{page['file']}", len(lines) - len(kept), row_map))
    if rewrites:
        if index_name == MANIFEST:
            index["rows"] = sum(p["rows"] for p in index["pages"])
            digest = hashlib.sha256()
            for p in index["pages"]:
                digest.update(p["sha256"].encode())
            index["sha256"] = digest.hexdigest()
            _atomic_write(folder / MANIFEST, json.dumps(index, indent=2).encode())
        else:
            _atomic_write(folder / PROGRESS, json.dumps(index).encode())
        _note_erasure(folder, request, sum(r.removed for r in rewrites))
    return rewrites


def _note_erasure(folder: Path, request: str, rows: int) -> None:
    path = folder / ERASURE_NOTE
    notes = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    notes.append({"at": datetime.now(timezone.utc).isoformat(), "request": request, "rows_removed": rows})
    _atomic_write(path, json.dumps(notes, indent=2).encode())


def _redact_parquet(path: Path, keys: set[str]) -> int:
    """A canonical-rows file without the rows of these keys; its schema (with its metadata,
    such as the mapped rows' fingerprint) kept as it was."""
    table = pq.read_table(path)
    if not table.num_rows or "source_key" not in table.column_names:
        return 0
    drop = np.array([_matches(k, keys) for k in table.column("source_key").to_pylist()], dtype=bool)
    if not drop.any():
        return 0
    tmp = path.with_name(f"{path.name}.erasing")
    pq.write_table(table.filter(pa.array(~drop)), tmp)
    os.replace(tmp, path)
    return int(drop.sum())


def redact_checked(folder: Path, keys: set[str], rewrites: list[PageRewrite]) -> int:
    """The checked work files of a batch (canonical rows: ``source_key`` is already normalised):
    the hand-over, a full extract's mapped rows kept for its next batch, the failures."""
    removed = 0
    for name in ("passed.parquet", MAPPED):
        if (folder / name).exists():
            removed += _redact_parquet(folder / name, keys)
    failures_path = folder / "failures.json"
    if failures_path.exists():
        failures = json.loads(failures_path.read_text(encoding="utf-8"))
        maps = {r.landing_file: r.row_map for r in rewrites}
        kept = []
        for f in failures:
            if _matches(f.get("source_key"), keys):
                removed += 1
                continue
            if f.get("landing_file") in maps:
                f["landing_row"] = maps[f["landing_file"]].get(f["landing_row"], f["landing_row"])
            kept.append(f)
        if len(kept) != len(failures) or maps:
            _atomic_write(failures_path, json.dumps(kept).encode("utf-8"))
    return removed


# -- drop files -------------------------------------------------------------------------------
def redact_csv(path: Path, key_column: str, keys: set[str], encoding: str = "utf-8-sig", delimiter: str = ",") -> int:
    raw = path.read_bytes()
    enc = encoding if encoding != "auto" else "utf-8-sig"
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError:
        enc, text = "cp1252", raw.decode("cp1252", errors="strict")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    if not rows or key_column not in [h.strip() for h in rows[0]]:
        raise ValueError(f"{path.name}: no header with column {key_column}")
    col = [h.strip() for h in rows[0]].index(key_column)
    kept = [rows[0]] + [r for r in rows[1:] if not (len(r) > col and _matches(r[col], keys))]
    if len(kept) == len(rows):
        return 0
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(kept)
    _atomic_write(path, out.getvalue().encode(enc if enc != "utf-8-sig" else "utf-8"))
    return len(rows) - len(kept)


def redact_fixed_width(path: Path, layout: Any, key_column: str, keys: set[str]) -> int:  # noqa: ANN401
    """Remove the detail lines with these keys; the trailer's count field is rewritten."""
    text = path.read_bytes().decode(layout.encoding)
    term = layout.line_terminator
    lines = text.split(term)
    trailing = lines and lines[-1] == ""
    if trailing:
        lines = lines[:-1]
    key_field = next(f for f in layout.detail if f.name == key_column)
    a, b = key_field.start - 1, key_field.start - 1 + key_field.width
    marker = layout.detail[0].value
    kept = [ln for ln in lines if not (ln.startswith(marker) and _matches(ln[a:b], keys))]
    removed = len(lines) - len(kept)
    if not removed:
        return 0
    if layout.trailer and kept and kept[-1].startswith(layout.trailer[0].value):
        count = next(f for f in layout.trailer if f.name == layout.count_field)
        ca, cb = count.start - 1, count.start - 1 + count.width
        old = kept[-1][ca:cb]
        if old.strip().isdigit():
            kept[-1] = kept[-1][:ca] + str(int(old) - removed).zfill(count.width) + kept[-1][cb:]
    _atomic_write(path, (term.join(kept) + (term if trailing else "")).encode(layout.encoding))
    return removed


def redact_xml(path: Path, record_element: str, key_column: str, keys: set[str], count_attribute: str | None) -> int:
    """Remove the record elements whose key child has an erased key (entities off, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    tree = etree.parse(str(path), parser)
    root = tree.getroot()
    removed = 0
    for rec in list(root.iter()):
        if not isinstance(rec.tag, str) or etree.QName(rec).localname != record_element:
            continue
        key = next((c.text for c in rec if isinstance(c.tag, str) and etree.QName(c).localname == key_column), None)
        if _matches(key, keys):
            parent = rec.getparent()
            if rec.tail and rec.getprevious() is not None:
                rec.getprevious().tail = rec.tail
            parent.remove(rec)
            removed += 1
    if removed:
        if count_attribute and (root.get(count_attribute) or "").strip().isdigit():
            root.set(count_attribute, str(int(root.get(count_attribute)) - removed))
        _atomic_write(path, etree.tostring(tree, xml_declaration=True, encoding="utf-8"))
    return removed


def file_mentions(path: Path, keys: set[str]) -> bool:
    """Whether any erased key appears in the file's bytes (any case)."""
    data = path.read_bytes().upper()
    return any(k.encode("utf-8") in data for k in keys)


def delete_with_note(path: Path, request: str) -> None:
    """A file that cannot be rewritten record by record goes whole; a note says why."""
    note = path.with_name(path.name + ".erased.txt")
    note.write_text(f"{path.name} was deleted on {datetime.now(timezone.utc):%Y-%m-%d} under erasure request "
                    f"{request}: it held an erased record and could not be parsed to remove only that record.\n",
                    encoding="utf-8")
    path.unlink()


# -- reports and demo truth -----------------------------------------------------------------------
def redact_text_files(files: Iterable[Path], identifiers: set[str]) -> int:
    """Replace each identifier (source keys) in text reports with ``[erased]``; files changed."""
    changed = 0
    needles = sorted({i for i in identifiers if i}, key=len, reverse=True)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = text
        for needle in needles:
            new = new.replace(needle, REDACTED)
        if new != text:
            _atomic_write(path, new.encode("utf-8"))
            changed += 1
    return changed


def redact_truth_csv(path: Path, pairs: set[tuple[str, str]]) -> int:
    """The synthetic council's ground truth (demo only): drop the erased (system, key) rows."""
    if not path.exists():
        return 0
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    kept = [rows[0]] + [r for r in rows[1:] if (r[0], normalise_key(r[1])) not in pairs] if rows else []
    if len(kept) == len(rows):
        return 0
    out = io.StringIO(newline="")
    csv.writer(out).writerows(kept)
    _atomic_write(path, out.getvalue().encode("utf-8"))
    return len(rows) - len(kept)
