"""The client's real address behind a reverse proxy.

Behind nginx every request reaches the app from the proxy's address, so the per-address
sign-in lockout and the portal's per-address rate limit would lump every patient and every
member of staff together. When the request comes from an address listed in
``GLABELLA_TRUSTED_PROXIES`` (addresses or networks, comma-separated; empty by default, which
switches this off), :class:`ForwardedForMiddleware` takes the client's address from
``X-Forwarded-For``: the right-most address there that is not itself a trusted proxy (the
left-most entries are whatever the client chose to send, so they are never believed).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
    )


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(remote_addr: str, forwarded_for: str, trusted: str) -> str:
    """The client's address, given the peer, X-Forwarded-For and the trusted proxies."""
    networks = _networks(trusted or "")
    if not networks or not _trusted(remote_addr, networks):
        return remote_addr
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote_addr  # a malformed entry: keep the proxy's own address
    return remote_addr


class ForwardedForMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trusted = getattr(settings, "GLABELLA_TRUSTED_PROXIES", "")
        if trusted:
            request.META["REMOTE_ADDR"] = client_address(
                str(request.META.get("REMOTE_ADDR", "")),
                str(request.META.get("HTTP_X_FORWARDED_FOR", "")),
                trusted,
            )
        return self.get_response(request)
