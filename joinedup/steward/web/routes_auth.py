"""Sign in and out. The only pages a visitor reaches without a session (with /static)."""
from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from joinedup.steward import audit
from joinedup.steward.users import authenticate
from joinedup.steward.web import login_limits
from joinedup.steward.web.proxy import client_address
from joinedup.steward.web.render import flash, render
from joinedup.steward.web.security import csrf_protect, current_user, db, sign_in

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect to another host)."""
    if not target:
        return "/report"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/report"
    return target


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return render(request, "login.html", next=_safe_next(next), title="Sign in")


@router.post("/login", dependencies=[Depends(csrf_protect)])
def login(request: Request, username: str = Form(...), password: str = Form(...), next: str | None = Form(None),  # noqa: A002
          session: Session = Depends(db)) -> Response:
    name, client = username.strip()[:80] or "(blank)", client_address(request)
    refusal = login_limits.check(session, name, client, request.app.state.login_limits)
    if refusal is not None:  # the password is not even checked
        audit.record(session, name, "login_refused", client=client,
                     detail={"failures": refusal.failures, "by_address": refusal.scope == "address"})
        session.commit()
        response = render(request, "login.html", status_code=429, next=_safe_next(next), title="Sign in",
                          error=refusal.message)
        response.headers["Retry-After"] = str(int(refusal.retry_after.total_seconds()) + 1)
        return response
    user = authenticate(session, username, password)
    if user is None:
        audit.record(session, name, "login_failed", client=client)
        session.commit()
        return render(request, "login.html", status_code=401, next=_safe_next(next), title="Sign in",
                      error="Wrong username or password.")
    sign_in(request, user)
    audit.record(session, user.username, "login", client=client)
    session.commit()
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request, session: Session = Depends(db)) -> Response:
    try:
        me = current_user(request, session)
        audit.record(session, me.username, "logout")
        session.commit()
    except Exception:  # noqa: BLE001 - an expired session logs out all the same
        pass
    request.session.clear()
    flash(request, "Signed out.")
    return RedirectResponse("/login", status_code=303)
