"""A full extract's mapped rows, reused by its next batch.

A source that sends every record every night (``extract: full`` in its adapter file: HR,
social care) repeats most of its last batch unchanged, and mapping those records again gives
the same canonical rows: a record's canonical row depends only on its own raw values, the
mapping file and the code that maps. So the check step keeps, beside a full extract's
hand-over file, the canonical row of every record it mapped under a digest of the record's
landed line (``checked/mapped.parquet``: the digest ``pipeline._survey`` already takes to
find records landed twice), and the next batch of the source maps only the records whose
digest is not there; the others' rows are read back. Every row, reused or not, still goes
through the quality gate: the gate's counts, failure rate and batch rules are the whole
batch's, as before.

The file is stamped with a fingerprint of what mapping depends on: the source, its mapping
file and the mapping code (every file of the ``joinedup`` package, with pandas' and numpy's
versions). After an upgrade or a change to the mapping nothing is reused and the batch is
mapped whole, once. A file that cannot be read is passed over with a warning (the batch is
then mapped whole): it is a copy, never the only one of anything.

It holds canonical personal data as the hand-over file beside it does: erasure removes a
person's rows from both (``privacy.file_redaction.redact_checked``), and retention deletes
it with its batch's landing folder.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import joinedup
from joinedup.canonical import person_fields
from joinedup.mapping.spec import MappingSpec

log = logging.getLogger(__name__)

MAPPED = "mapped.parquet"
FINGERPRINT = b"joinedup.mapping_fingerprint"
DIGEST = ("raw_digest_a", "raw_digest_b")  # the 16-byte digest of the landed line, as two halves


def digests_of(lines_digest: bytes) -> np.ndarray:
    """16-byte digests, one after another, as the structured array the check keeps per row."""
    return np.frombuffer(lines_digest, dtype=[("a", "<u8"), ("b", "<u8")])


def mapped_columns() -> list[str]:
    """The columns ``engine.map_records`` returns: the canonical fields and ``mapping_issues``."""
    return [*person_fields(), "mapping_issues"]


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    package = Path(joinedup.__file__).parent
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    digest.update(f"pandas {pd.__version__} numpy {np.__version__}".encode())
    return digest.hexdigest()


def fingerprint(spec: MappingSpec, source_system: str) -> str:
    """What a mapped row depends on besides the raw record (see the module doc)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (_code_fingerprint(), source_system, spec.model_dump_json()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _previous(folder: Path) -> Path | None:
    """The newest mapped-rows file of the source's other batches (``folder`` is this batch's
    ``checked`` folder: ``landing/<source>/<run>/checked``). Newest by the file's time: an
    older batch's file rewritten by an erasure is then taken, which only means fewer rows
    reused (a row is found by the digest of its raw record, whichever batch held it)."""
    found = [p for p in folder.parent.parent.glob(f"*/checked/{MAPPED}") if p.parent != folder]
    return max(found, key=lambda p: p.stat().st_mtime_ns, default=None)


class FullExtractMapping:
    """Maps a full extract's batch chunk by chunk, reusing the rows of the source's last
    mapped batch, and writes this batch's rows for the next one (``finish``)."""

    def __init__(self, folder: Path, spec: MappingSpec, source_system: str) -> None:
        self.folder = folder
        self.source_system = source_system
        self.stamp = fingerprint(spec, source_system)
        self.columns = mapped_columns()
        self.reused = 0
        self.mapped = 0
        self._previous: pa.Table | None = None
        self._index: pd.MultiIndex | None = None
        self._load(_previous(folder))
        self._tmp = folder / f"{MAPPED}.tmp"
        self._writer: pq.ParquetWriter | None = None
        self._schema = pa.schema([(DIGEST[0], pa.uint64()), (DIGEST[1], pa.uint64())]
                                 + [(name, pa.string()) for name in self.columns],
                                 metadata={FINGERPRINT: self.stamp.encode()})

    def _load(self, path: Path | None) -> None:
        if path is None:
            return
        batch = path.parent.parent.name
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            log.warning("source %s: the mapped rows of batch %s could not be read (%s); mapping the batch whole",
                        self.source_system, batch, type(exc).__name__)
            return
        if (table.schema.metadata or {}).get(FINGERPRINT) != self.stamp.encode() \
                or table.column_names != [*DIGEST, *self.columns]:
            log.info("source %s: the mapping or its code changed since batch %s; mapping the batch whole",
                     self.source_system, batch)
            return
        index = pd.MultiIndex.from_arrays([table.column(DIGEST[0]).to_numpy(), table.column(DIGEST[1]).to_numpy()])
        if not index.is_unique:  # one batch's kept rows are distinct records: this file was not written by us
            log.warning("source %s: the mapped rows of batch %s repeat a record; mapping the batch whole",
                        self.source_system, batch)
            return
        self._previous, self._index = table, index

    def map(self, records: list[dict[str, Any]], digests: np.ndarray,
            map_records: Callable[[list[dict[str, Any]]], pd.DataFrame]) -> pd.DataFrame:
        """The canonical rows of ``records`` (``digests``: their landed lines' digests), in
        their order: read back where the last batch held the same line, mapped otherwise."""
        if len(records) != len(digests):
            raise ValueError(f"{len(records)} records but {len(digests)} digests")
        found = np.full(len(records), -1, dtype=np.int64)
        if self._index is not None and len(records):
            found = self._index.get_indexer(pd.MultiIndex.from_arrays([digests["a"], digests["b"]]))
        hit = found >= 0
        parts = []
        if not hit.all() or not len(records):
            missing = np.flatnonzero(~hit)
            mapped = map_records([records[i] for i in missing])
            parts.append(mapped.set_axis(missing))
        if hit.any():
            assert self._previous is not None
            again = self._previous.take(pa.array(found[hit])).drop_columns(list(DIGEST)).to_pandas()
            parts.append(again.astype(object).set_axis(np.flatnonzero(hit)))
        frame = (pd.concat(parts).sort_index() if len(parts) > 1 else parts[0]).reset_index(drop=True)
        self.reused += int(hit.sum())
        self.mapped += int((~hit).sum())
        self._keep(frame, digests)
        return frame

    def _keep(self, frame: pd.DataFrame, digests: np.ndarray) -> None:
        if list(frame.columns) != self.columns:  # a bug, not bad input: map_records gives these columns
            raise ValueError(f"mapped columns {list(frame.columns)} are not the canonical columns")
        columns = [pa.array(np.ascontiguousarray(digests[half]), pa.uint64()) for half in ("a", "b")]
        columns += [pa.array(frame[name].to_numpy(dtype=object), pa.string(), from_pandas=True) for name in self.columns]
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self._tmp, self._schema)
        self._writer.write_table(pa.Table.from_arrays(columns, schema=self._schema))

    def finish(self) -> None:
        """Put this batch's mapped rows in place for the source's next batch."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        self._tmp.replace(self.folder / MAPPED)

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._tmp.unlink(missing_ok=True)
