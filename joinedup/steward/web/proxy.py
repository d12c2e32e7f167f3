"""Which addresses are the council's reverse proxy, and what the proxy says about the client.

Behind a reverse proxy, the TCP peer of every request is the proxy. Only a peer in the
trusted list may tell us the real client address (``X-Forwarded-For``) or, in single sign-on
mode, the signed-in user (see ``sso.py``). ``ForwardedFor`` is an ASGI middleware that keeps
the TCP peer in ``scope["joinedup.peer"]`` (what SSO checks) and, for a trusted peer, puts the
forwarded client address in ``scope["client"]`` (what the audit and the login rate limit
count). ``joinedup serve`` therefore runs uvicorn with ``proxy_headers=False``: uvicorn's own
rewriting would hide the peer.

``JOINEDUP_TRUSTED_PROXIES`` (comma-separated addresses or CIDR networks) lists them; when
unset, ``JOINEDUP_SSO_TRUSTED_PROXIES``, else 127.0.0.1 and ::1 (a proxy on the same host).
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any

from fastapi import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PEER_KEY = "joinedup.peer"
LOCAL_PROXIES = "127.0.0.1/32,::1/128"


def parse_networks(text: str, setting: str) -> tuple[Network, ...]:
    """``"127.0.0.1/32, 10.0.0.0/8"`` -> networks; a clear error naming the setting otherwise."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{setting}: {item!r} is not an IP address or network (e.g. 127.0.0.1/32, "
                             "10.20.0.0/16); separate several with commas") from None
    return tuple(networks)


def parse_address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...]

    @classmethod
    def from_env(cls) -> "TrustedProxies":
        for name in ("JOINEDUP_TRUSTED_PROXIES", "JOINEDUP_SSO_TRUSTED_PROXIES"):
            if os.environ.get(name, "").strip():
                return cls(parse_networks(os.environ[name], name))
        return cls(parse_networks(LOCAL_PROXIES, "default trusted proxies"))

    def trusts(self, address: str | None) -> bool:
        ip = parse_address(address)
        return ip is not None and any(ip in net for net in self.networks)


class ForwardedFor:
    """Keep the TCP peer; believe ``X-Forwarded-For`` only from a trusted proxy (rightmost
    address not itself a trusted proxy, so a client cannot prepend a forged one)."""

    def __init__(self, app: Any, proxies: TrustedProxies) -> None:
        self.app, self.proxies = app, proxies

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            scope[PEER_KEY] = peer[0] if peer else None
            if peer and self.proxies.trusts(peer[0]):
                forwarded = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"]
                hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
                for hop in reversed(hops):
                    if parse_address(hop) is None:
                        break  # garbage: keep the last good client we have
                    scope["client"] = (hop, 0)
                    if not self.proxies.trusts(hop):
                        break
        await self.app(scope, receive, send)


def peer_of(request: Request) -> str | None:
    """The TCP peer (the proxy, when there is one)."""
    if PEER_KEY in request.scope:
        return request.scope[PEER_KEY]
    return request.client.host if request.client else None


def client_address(request: Request) -> str | None:
    """The client's IP address as text (after a trusted proxy's X-Forwarded-For), or None."""
    ip = parse_address(request.client.host if request.client else None)
    return str(ip) if ip is not None else None
