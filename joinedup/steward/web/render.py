"""Templates and the page context every template gets (user, CSRF token, flash messages)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from joinedup.steward.web.security import csrf_token

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["ROLE_HELP"] = {"viewer": "reads", "steward": "decides", "admin": "decides, audits"}


def flash(request: Request, message: str, kind: str = "ok", link: tuple[str, str] | None = None) -> None:
    """A message for the next page (kept in the signed session; no personal values)."""
    request.session.setdefault("flash", []).append({"text": message, "kind": kind, "link": list(link) if link else None})


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    messages = request.session.pop("flash", []) if "session" in request.scope else []
    return templates.TemplateResponse(
        request, name, {"user": getattr(request.state, "user", None), "csrf_token": csrf_token(request),
                        "messages": messages, **context}, status_code=status_code)
