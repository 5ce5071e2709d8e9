"""Which webhook URLs Recur may call (server-side request forgery).

In production a URL must be https and every address its host resolves to must be public:
no loopback, private, link-local, multicast, reserved or unspecified address (IPv4 and IPv6,
IPv4-mapped included). It is checked when the endpoint is saved and again at every send, and
the sender connects to the address it checked (``transport``), so a DNS answer that changes
between the check and the connection (rebinding) cannot point it inward. Development and tests
(``RECUR_WEBHOOK_ALLOW_PRIVATE``) allow http and local addresses.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

URL_MAX = 2000


class AddressRefused(Exception):
    """The URL may not be called; the message says why (shown to the merchant)."""


def private_allowed() -> bool:
    return bool(getattr(settings, "RECUR_WEBHOOK_ALLOW_PRIVATE", not settings.PRODUCTION))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def url_shape_problem(url: str) -> str | None:
    """What is wrong with the URL itself (no DNS), or None."""
    if len(url) > URL_MAX:
        return f"At most {URL_MAX} characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Not a valid URL."
    allowed = ("https",) if not private_allowed() else ("http", "https")
    if parts.scheme not in allowed:
        return "The URL must use https." if not private_allowed() else "The URL must use http or https."
    if not parts.hostname:
        return "The URL has no host."
    if parts.username or parts.password:
        return "The URL may not carry credentials."
    if port == 0:
        return "Not a valid port."
    return None


def resolve_checked(host: str, port: int) -> list[str]:
    """The host's addresses, all of them allowed; raises ``AddressRefused`` otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"The host {host} does not resolve.") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise AddressRefused(f"The host {host} does not resolve.")
    if not private_allowed():
        refused = [a for a in addresses if not _public(a)]
        if refused:
            raise AddressRefused(f"The host {host} resolves to a non-public address ({refused[0]}).")
    return addresses


def url_problem(url: str) -> str | None:
    """Everything that makes the URL refused at creation: shape, then its addresses."""
    problem = url_shape_problem(url)
    if problem:
        return problem
    if private_allowed():
        return None  # development: any host, even one that does not resolve yet
    parts = urlsplit(url)
    try:
        resolve_checked(parts.hostname, parts.port or 443)
    except AddressRefused as exc:
        return str(exc)
    return None
