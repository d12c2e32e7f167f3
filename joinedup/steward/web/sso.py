"""Single sign-on behind the council's reverse proxy: a trusted-header mode, off unless configured.

The proxy (nginx or Apache with mod_auth_openidc, oauth2-proxy, ...) signs the user in against
the council's identity provider and passes the username in a header. The workbench believes
that header only when

- the mode is on: ``JOINEDUP_SSO_USER_HEADER`` names the header (e.g. ``X-Remote-User``), and
- the request's TCP peer is in ``JOINEDUP_SSO_TRUSTED_PROXIES`` (required with the mode, e.g.
  ``127.0.0.1/32``): a header from any other address is ignored, as if it were not there.

The user must exist locally (``joinedup users add NAME --role viewer``), unless
``JOINEDUP_SSO_AUTO_PROVISION=1``: then an unknown user is created as a viewer without the
social-care permission, and an admin raises the role. ``JOINEDUP_SSO_ROLES_HEADER`` (optional)
names a header listing the user's groups (comma, semicolon or space separated); when set, it
is authoritative: the highest of ``viewer``/``steward``/``admin`` found (after the optional
``JOINEDUP_SSO_ROLE_PREFIX``, e.g. ``joinedup-``) becomes the user's role, ``socialcare`` grants
the social-care permission, and a user with none of them is refused.

Without a trusted header the ordinary sign-in page still works (an admin's way in when the
identity provider is down); bind the workbench to 127.0.0.1 so only the proxy reaches it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session

from joinedup.steward.models import ROLES, StewardUser
from joinedup.steward.users import add_sso_user, find_user, valid_username
from joinedup.steward.web.proxy import TrustedProxies, parse_networks, peer_of

TRUE = ("1", "true", "yes", "on")


class SsoRefused(Exception):
    """The proxy vouched for a user the workbench will not let in; the message says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SsoSettings:
    user_header: str
    proxies: TrustedProxies
    roles_header: str | None = None
    role_prefix: str = ""
    auto_provision: bool = False

    @classmethod
    def from_env(cls) -> "SsoSettings | None":
        """The settings, or None when the mode is off (``JOINEDUP_SSO_USER_HEADER`` unset)."""
        header = os.environ.get("JOINEDUP_SSO_USER_HEADER", "").strip()
        if not header:
            return None
        proxies = os.environ.get("JOINEDUP_SSO_TRUSTED_PROXIES", "").strip()
        if not proxies:
            raise ValueError("JOINEDUP_SSO_USER_HEADER is set but JOINEDUP_SSO_TRUSTED_PROXIES is not: name the "
                             "reverse proxy's address (e.g. 127.0.0.1/32), or unset the header to turn SSO off")
        return cls(user_header=header, proxies=TrustedProxies(parse_networks(proxies, "JOINEDUP_SSO_TRUSTED_PROXIES")),
                   roles_header=os.environ.get("JOINEDUP_SSO_ROLES_HEADER", "").strip() or None,
                   role_prefix=os.environ.get("JOINEDUP_SSO_ROLE_PREFIX", "").strip(),
                   auto_provision=os.environ.get("JOINEDUP_SSO_AUTO_PROVISION", "").strip().lower() in TRUE)

    def roles_from(self, header: str) -> tuple[str | None, bool]:
        """(highest role named, social-care permission) from the groups header."""
        names = {g.strip().lower() for g in re.split(r"[,;\s]+", header) if g.strip()}
        prefix = self.role_prefix.lower()
        granted = {n[len(prefix):] for n in names if n.startswith(prefix)}
        roles = [r for r in ROLES if r in granted]
        return (roles[-1] if roles else None), "socialcare" in granted


@dataclass(frozen=True)
class SsoSignIn:
    user: StewardUser
    created: bool = False
    role_changed: bool = False


def trusted_username(request: Request, settings: SsoSettings) -> str | None:
    """The username the proxy vouches for, or None (mode off, untrusted peer, no header)."""
    if not settings.proxies.trusts(peer_of(request)):
        return None
    value = request.headers.get(settings.user_header, "").strip()
    return value or None


def sso_sign_in(request: Request, session: Session, settings: SsoSettings) -> SsoSignIn | None:
    """The local user behind a trusted SSO header (made or updated as configured), or None."""
    username = trusted_username(request, settings)
    if username is None:
        return None
    if not valid_username(username):
        raise SsoRefused("The single sign-on username is not a valid workbench username "
                         "(1 to 80 characters without spaces); ask the proxy's administrator.")
    role, socialcare = None, False
    if settings.roles_header:
        role, socialcare = settings.roles_from(request.headers.get(settings.roles_header, ""))
        if role is None:
            raise SsoRefused("Your single sign-on account has no workbench role (viewer, steward or admin); "
                             "ask the council's identity administrator to add you to a workbench group.")
    user, created, changed = find_user(session, username), False, False
    if user is None:
        if not settings.auto_provision:
            raise SsoRefused("You signed in through single sign-on but are not a workbench user yet; "
                             "ask an admin to run `joinedup users add <your username> --role viewer`.")
        user = add_sso_user(session, username, role or "viewer", socialcare=socialcare)
        created = True
    if not user.active:
        raise SsoRefused("Your workbench account is disabled; ask an admin.")
    if settings.roles_header and (user.role, bool(user.socialcare)) != (role, socialcare):
        user.role, user.socialcare, changed = role, socialcare, not created
    return SsoSignIn(user=user, created=created, role_changed=changed)
