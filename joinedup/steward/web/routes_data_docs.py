"""The GX Data Docs site (``var/reports/data_docs/``, built by ``joinedup.quality.data_docs``),
served read-only to signed-in users at ``/data-docs/``.

- Only files inside the site folder: the requested path is resolved (symlinks too) and must
  stay under the folder, else 404; no directory listings; GET only.
- The pages are GX's own HTML, with inline scripts and styles from public CDNs, so they get
  their own Content-Security-Policy: ``sandbox`` (the page runs in an opaque origin: its
  scripts cannot act as the workbench or read its pages), no ``connect-src`` (no sending data
  anywhere), the CDN hosts GX's templates name for styles, scripts and fonts. The pages hold
  counts and expectation names only (``data_docs`` strips values before rendering).
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, RedirectResponse, Response

from joinedup.quality.data_docs import data_docs_dir, data_docs_index
from joinedup.steward.web.security import current_user

router = APIRouter(dependencies=[Depends(current_user)])

PREFIX = "/data-docs/"
_CDNS = ("https://cdn.jsdelivr.net https://cdnjs.cloudflare.com https://maxcdn.bootstrapcdn.com "
         "https://stackpath.bootstrapcdn.com https://unpkg.com https://code.jquery.com")
DATA_DOCS_POLICY = (
    "sandbox allow-scripts allow-popups; default-src 'none'; "
    f"script-src 'self' 'unsafe-inline' {_CDNS}; style-src 'self' 'unsafe-inline' {_CDNS}; "
    f"font-src 'self' data: {_CDNS}; img-src 'self' data:; connect-src 'none'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def data_docs_link(stored: str | None) -> str | None:
    """The workbench URL of a Data Docs page recorded relative to var/reports
    (``data_docs/validations/...html``), or None for anything else."""
    if not stored or not stored.startswith("data_docs/") or ".." in stored.split("/"):
        return None
    return PREFIX + stored.removeprefix("data_docs/")


def site_file(relative: str) -> Path | None:
    """The file of the site at ``relative``, or None when it is not a file inside the site."""
    base = data_docs_dir().resolve()
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


@router.get("/data-docs")
@router.get("/data-docs/")
def data_docs_home() -> Response:
    if data_docs_index() is None:
        raise HTTPException(404, "No GX Data Docs yet: they are written when a night validates a batch "
                                 "(and JOINEDUP_DATA_DOCS is not off).")
    return RedirectResponse(PREFIX + "index.html", status_code=303)


@router.get("/data-docs/{relative:path}")
def data_docs_file(relative: str) -> Response:
    path = site_file(relative)
    if path is None:
        raise HTTPException(404, "No such page in the GX Data Docs.")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = FileResponse(path, media_type=media_type)
    response.headers["Content-Security-Policy"] = DATA_DOCS_POLICY
    return response
