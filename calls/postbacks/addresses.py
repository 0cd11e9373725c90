"""Where postbacks may go: HTTPS on public addresses only, unless a setting allows more.

A host is resolved and every address it has is checked: one private address among public ones
is enough to refuse it. The check runs when staff save an endpoint and again at each delivery,
and the delivery then connects to the very address it checked, so a DNS answer that changes
between check and connection (rebinding) cannot point a postback at the private network.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class PostbackAddressRefused(Exception):
    """The URL is not one postbacks may be sent to; the message says why, for staff."""


@dataclass(frozen=True)
class PostbackTarget:
    scheme: str  # https, or http when private hosts are allowed
    host: str
    port: int
    path: str  # with its query string
    address: str  # the checked IP address to connect to


def postback_url_check(url: str) -> PostbackTarget:
    """The target of a postback URL, resolved and checked; PostbackAddressRefused otherwise."""
    allow_private = settings.POSTBACK_ALLOW_PRIVATE_HOSTS
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PostbackAddressRefused(f"Not a usable URL: {exc}.") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise PostbackAddressRefused("Postback URLs must use https://.")
    if not parts.hostname:
        raise PostbackAddressRefused("The URL has no host.")
    if parts.username or parts.password:
        raise PostbackAddressRefused("Credentials in the URL are not allowed.")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(parts.hostname, port)
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                raise PostbackAddressRefused(
                    f"{parts.hostname} resolves to {address}, which is not a public address."
                )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return PostbackTarget(
        scheme=parts.scheme, host=parts.hostname, port=port, path=path, address=addresses[0]
    )


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise PostbackAddressRefused(f"{host} does not resolve ({exc}).") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise PostbackAddressRefused(f"{host} does not resolve.")
    return addresses


def _is_public(address: str) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved,
    multicast or unspecified (an IPv4 address inside IPv6 is judged as itself)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
