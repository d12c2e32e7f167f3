"""The Adapter protocol and the errors an adapter raises, grouped by what the caller can do.

An adapter speaks one source's protocol and yields raw records page by page; it never
transforms them. The framework lands each page before it calls ``acknowledge`` and before
it stores the cursor, so a crash re-fetches rather than skips.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel


class SourceError(Exception):
    """Something went wrong talking to a source. Messages carry no personal data."""


class FatalSourceError(SourceError):
    """Stop this source for tonight (bad credentials, missing file, schema drift); others go on."""


class RetriableSourceError(SourceError):
    """A passing fault (timeout, 429, 5xx): back off and try again."""


@dataclass
class Page:
    """One page (or file) of raw records as the source sent them."""

    records: list[dict[str, Any]]
    cursor: str | None  # the watermark after this page
    origin: str  # where it came from: a file name, a page token (no secrets, no personal data)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Health:
    ok: bool
    detail: str


@runtime_checkable
class Adapter(Protocol):
    """What every adapter provides. ``Options`` validates the YAML's ``options:`` block."""

    Options: ClassVar[type[BaseModel]]

    def extract(self, cursor: str | None) -> Iterator[Page]:
        """Yield pages of records changed after ``cursor`` (None: everything)."""
        ...

    def acknowledge(self, page: Page) -> None:
        """Called once the page is safely landed (a file adapter moves the file to processed/)."""
        ...

    def health(self) -> Health:
        """Can the source be reached with the configured credentials?"""
        ...
