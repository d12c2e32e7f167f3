"""The workbench application: ``create_app()`` wires sessions, security headers, error pages,
the static folder and the routers. Every router except sign-in depends on ``current_user`` and
``csrf_protect``, so a new page is protected by being put on one of them."""
from __future__ import annotations

import logging
import os

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from joinedup.mci.store import get_engine, session_factory
from joinedup.steward.web import (routes_audit, routes_auth, routes_data_docs, routes_person, routes_report,
                                  routes_review)
from joinedup.steward.web.login_limits import LoginLimits
from joinedup.steward.web.proxy import ForwardedFor, TrustedProxies
from joinedup.steward.web.render import HERE, render
from joinedup.steward.web.security import SECURITY_HEADERS, CsrfRejected, Forbidden, LoginRequired, secret_key
from joinedup.steward.web.sso import SsoRefused, SsoSettings

log = logging.getLogger(__name__)
SESSION_HOURS = 8
PUBLIC_PREFIXES = ("/login", "/static/")


def create_app(db_url: str | None = None, *, secret: str | None = None, secure_cookies: bool | None = None,
               login_limits: LoginLimits | None = None, sso: SsoSettings | None | bool = True,
               proxies: TrustedProxies | None = None) -> FastAPI:
    """The workbench over the MCI at ``db_url`` (default: ``JOINEDUP_DB_URL`` or var/mci.sqlite).

    ``login_limits``, ``sso`` and ``proxies`` default to their environment settings (see
    login_limits.py, sso.py, proxy.py); ``sso=None`` turns single sign-on off whatever the
    environment says. A setting that does not parse stops the start with a message naming it."""
    app = FastAPI(title="JoinedUp steward workbench", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.login_limits = login_limits or LoginLimits.from_env()
    app.state.sso = SsoSettings.from_env() if sso is True else (sso or None)
    get_engine(db_url)  # brings the MCI schema, the workbench's tables included, up to date (migrations)
    app.state.sessions = session_factory(db_url)
    if secure_cookies is None:
        secure_cookies = os.environ.get("JOINEDUP_SECURE_COOKIES", "") in ("1", "true", "yes")
    app.add_middleware(SessionMiddleware, secret_key=secret or secret_key(), session_cookie="joinedup_session",
                       max_age=SESSION_HOURS * 3600, same_site="strict", https_only=secure_cookies)

    headers = dict(SECURITY_HEADERS)
    if secure_cookies:  # served over TLS: browsers keep to it
        headers["Strict-Transport-Security"] = "max-age=31536000"

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # noqa: ANN001, ANN202
        """Every answer carries the headers, a crash's 500 included (the server's own error
        page would not): the reply to an error is a page like any other."""
        try:
            response: Response = await call_next(request)
        except Exception as exc:  # noqa: BLE001 - logged (type and path only), answered with a plain 500
            log.error("workbench error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
            response = PlainTextResponse("The workbench failed on this request; the error is in the server log "
                                         "(time and path). Try again, or tell the administrator.", status_code=500)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"  # pages hold personal data
        return response

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        accept = request.headers.get("accept", "")
        wants_data = "application/json" in accept and "text/html" not in accept
        if request.method == "GET" and not wants_data:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            from urllib.parse import quote

            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return PlainTextResponse("sign in first", status_code=401)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", status_code=403, title="Not allowed", message=exc.message)

    @app.exception_handler(SsoRefused)
    async def _sso_refused(request: Request, exc: SsoRefused) -> Response:
        return render(request, "error.html", status_code=403, title="Not allowed", message=exc.message)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _exc: CsrfRejected) -> Response:
        return PlainTextResponse("The form had expired or did not come from this workbench (CSRF check failed). "
                                 "Go back, reload the page and try again.", status_code=403)

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(routes_auth.router)
    for module in (routes_report, routes_review, routes_person, routes_audit, routes_data_docs):
        app.include_router(module.router)
    # outermost: the TCP peer is kept before anything reads the client address
    app.add_middleware(ForwardedFor, proxies=proxies or TrustedProxies.from_env())
    return app
