"""Sign-in, roles, CSRF and security headers: what every page of the workbench relies on.

- The session is a signed cookie (Starlette's SessionMiddleware, itsdangerous), SameSite=Strict,
  HttpOnly; Secure when ``JOINEDUP_SECURE_COOKIES=1`` (behind TLS, as in production).
- The signing key is ``JOINEDUP_SECRET_KEY``, else a random key kept in ``var/steward_secret_key``
  (created with mode 0600), so sessions survive a restart.
- Every non-GET request carries the session's CSRF token (form field ``csrf_token`` or header
  ``X-CSRF-Token``); a request without it is refused with 403.
- The user is re-read from the database on every request: a disabled user or a changed
  password ends existing sessions.
- In single sign-on mode (``sso.py``) a trusted proxy's user header signs the user in (a new
  session when the user differs from the session's); without it, the session decides.
"""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from joinedup.paths import var_dir
from joinedup.steward import audit
from joinedup.steward.models import StewardUser
from joinedup.steward.users import CurrentUser, as_current, password_version
from joinedup.steward.web.proxy import client_address
from joinedup.steward.web.sso import SsoRefused, SsoSettings, sso_sign_in, trusted_username

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECRET_FILE = "steward_secret_key"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class LoginRequired(Exception):
    """No valid session: pages redirect to /login, other requests get 401."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token."""


def secret_key() -> str:
    """``JOINEDUP_SECRET_KEY``, else the key in ``var/steward_secret_key`` (made once, mode 0600)."""
    env = os.environ.get("JOINEDUP_SECRET_KEY")
    if env:
        if len(env) < 32:
            raise ValueError("JOINEDUP_SECRET_KEY must have at least 32 characters; "
                             "make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'")
        return env
    path: Path = var_dir() / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_protect(request: Request) -> None:
    """Refuse a state-changing request whose token is missing or not the session's."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if not sent:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfRejected()


def db(request: Request):  # noqa: ANN201 - a generator dependency
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def _sso_user(request: Request, session: Session, settings: SsoSettings) -> StewardUser | None:
    """The user a trusted proxy vouches for (signed in afresh when the session was someone
    else's or nobody's), or None when there is no trusted header."""
    try:
        signed = sso_sign_in(request, session, settings)
    except SsoRefused:
        session.rollback()
        audit.record(session, (trusted_username(request, settings) or "(blank)")[:80], "sso_refused",
                     client=client_address(request))
        session.commit()
        request.session.clear()
        raise
    if signed is None:
        return None
    user = signed.user
    fresh = request.session.get("uid") != user.id or request.session.get("pwv") != password_version(user)
    if fresh:
        sign_in(request, user)
    if fresh or signed.created or signed.role_changed:
        audit.record(session, user.username, "sso_login", client=client_address(request),
                     detail={"created": signed.created, "role_changed": signed.role_changed})
    session.commit()
    return user


def current_user(request: Request, session: Session = Depends(db)) -> CurrentUser:
    settings: SsoSettings | None = getattr(request.app.state, "sso", None)
    if settings is not None:
        user = _sso_user(request, session, settings)
        if user is not None:
            me = as_current(user)
            request.state.user = me
            return me
    uid, version = request.session.get("uid"), request.session.get("pwv")
    if not uid:
        raise LoginRequired()
    user = session.get(StewardUser, uid)
    if user is None or not user.active or password_version(user) != version:
        request.session.clear()
        raise LoginRequired()
    me = as_current(user)
    request.state.user = me
    return me


def sign_in(request: Request, user: StewardUser) -> None:
    """A fresh session for the user (new CSRF token: no fixation of a pre-login session)."""
    request.session.clear()
    request.session.update({"uid": user.id, "pwv": password_version(user), "csrf": secrets.token_urlsafe(32)})


def require_steward(user: CurrentUser = Depends(current_user)) -> CurrentUser:
    if not user.can_decide:
        raise Forbidden("Your role is viewer: deciding pairs and unmerging need the steward role.")
    return user


def require_admin(user: CurrentUser = Depends(current_user)) -> CurrentUser:
    if not user.is_admin:
        raise Forbidden("The audit log is for admins.")
    return user
