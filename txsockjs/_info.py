"""
What a session remembers of the request that opened it: addresses, whitelisted headers, URL.

Taken once, when the session opens, so nothing holds the request afterwards.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from types import MappingProxyType

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress
from twisted.web.iweb import IRequest

from ._options import SockJSOptions

#: The request headers handed to the application, as sockjs-node hands them.
HEADER_WHITELIST = (
    "referer",
    "x-client-ip",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-cluster-client-ip",
    "via",
    "x-real-ip",
    "host",
    "user-agent",
    "accept-language",
    "origin",
    "dnt",
)

#: The order in which whitelisted headers claim the ``max_header_bytes`` budget: the ones
#: an application decides by (origin, addresses) before the free-form ones, and the
#: cookie, exposed only on request, last.
_BUDGET_ORDER = (
    "host",
    "origin",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "via",
    "user-agent",
    "accept-language",
    "dnt",
    "referer",
    "cookie",
)


@dataclasses.dataclass(frozen=True)
class ConnectionInfo:
    """The facts of one session's opening request."""

    peer: IAddress
    host: IAddress
    headers: Mapping[str, str]
    url: str
    path: str
    prefix: str
    transport_name: str


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _address(host: str, port: int) -> IPv4Address | IPv6Address:
    if ":" in host:
        return IPv6Address("TCP", host, port)
    return IPv4Address("TCP", host, port)


def client_address(request: IRequest, options: SockJSOptions) -> IAddress:
    """
    The client's address: the TCP peer, or the first untrusted hop of ``X-Forwarded-For``
    when the peer is one of ``options.trusted_proxies``.
    """
    peer: IAddress = request.getClientAddress()
    trusted = options.trusted_proxies
    if not trusted or not isinstance(peer, (IPv4Address, IPv6Address)):
        return peer

    def is_trusted(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in trusted)

    if not is_trusted(peer.host):
        return peer
    forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
    hops = [hop.strip() for line in forwarded for hop in _text(line).split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer
            return _address(hop, 0)
    return peer


def kept_headers(request: IRequest, options: SockJSOptions) -> dict[str, str]:
    """
    The whitelisted headers of ``request`` a session keeps, within ``max_header_bytes``.

    Repeated headers are joined with ``", "``. Taken in :data:`_BUDGET_ORDER`, each header
    costs the length of its name and value; one that does not fit in what is left of the
    budget is left out whole (a cut value, such as half an address, would mislead), and
    later, shorter ones may still fit.
    """
    left = options.max_header_bytes
    headers = {}
    for name in _BUDGET_ORDER:
        if name == "cookie" and not options.expose_cookies:
            continue
        values = request.requestHeaders.getRawHeaders(name.encode("ascii"))
        if not values:
            continue
        cost = len(name) + sum(len(value) + 2 for value in values) - 2
        if cost > left:
            continue
        left -= cost
        headers[name] = ", ".join(_text(value) for value in values)
    return headers


def _redact_session(uri: str) -> str:
    """``/prefix/<server>/<session>/<transport>?q`` with the session id replaced by ``*``."""
    path, mark, query = uri.partition("?")
    parts = path.split("/")
    if len(parts) >= 4:
        parts[-2] = "*"
    return "/".join(parts) + mark + query


def connection_info(
    request: IRequest,
    options: SockJSOptions,
    prefix: str,
    transport_name: str,
    session_url: bool = True,
) -> ConnectionInfo:
    """
    Collect what the application may learn about the request that opened a session.

    :param session_url: the URL is ``.../<server>/<session>/<transport>``; the session id
        in it is replaced by ``*``, since whoever knows it can post into the session.
    """
    headers = kept_headers(request, options)
    uri = _text(request.uri)
    if session_url:
        uri = _redact_session(uri)
    host = request.getHost()
    if not isinstance(host, (IPv4Address, IPv6Address, UNIXAddress)):
        host = IPv4Address("TCP", "0.0.0.0", 0)
    return ConnectionInfo(
        peer=client_address(request, options),
        host=host,
        headers=MappingProxyType(headers),
        url=uri,
        path=uri.split("?", 1)[0],
        prefix=prefix,
        transport_name=transport_name,
    )
