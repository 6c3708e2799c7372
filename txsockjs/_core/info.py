"""
What a session remembers of the request that opened it: addresses, whitelisted headers, URL;
and what the ``authenticate`` hook sees of that request (:class:`ConnectRequest`).

Taken once, when the session opens, so nothing holds the request afterwards.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from collections.abc import Mapping
from types import MappingProxyType

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress
from twisted.web.iweb import IRequest

from .options import SockJSOptions

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


def host_key(address: IAddress) -> str:
    """
    The client host of an address, as :func:`client_address` gives it, for comparing two
    requests: the IP address without the port (an IPv4 address mapped into IPv6 as its
    IPv4 form), or the address itself for other kinds (a UNIX socket's peer).
    """
    if isinstance(address, (IPv4Address, IPv6Address)):
        try:
            ip = ipaddress.ip_address(address.host.split("%", 1)[0])
        except ValueError:
            return address.host
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ip)
    return repr(address)


@dataclasses.dataclass(frozen=True)
class ConnectRequest:
    """
    A read-only view of the request that opens a session, as the ``authenticate`` hook sees
    it: an HTTP request of a receiving transport, or a websocket handshake.

    The session id in :attr:`url` and :attr:`path` is replaced by ``*``.
    """

    #: The SockJS transport, as sockjs-client names it (``websocket``, ``xhr-streaming``,
    #: ...), or ``raw-websocket``.
    transportName: str
    #: ``GET`` or ``POST``.
    method: str
    #: The request's URL (path and query), as a string.
    url: str
    #: The path of that URL, without the query.
    path: str
    #: The path at which the SockJS service is mounted.
    prefix: str
    #: The query arguments, decoded as UTF-8: each name with its values in order.
    args: Mapping[str, tuple[str, ...]]
    #: Every request header, by lowercase name; repeated headers are joined with ``", "``
    #: (``cookie`` with ``"; "``). Unlike ``transport.headers``, cookies and
    #: ``authorization`` are here.
    headers: Mapping[str, str]
    #: The cookies of the ``Cookie`` header, by name (the first of a repeated name).
    cookies: Mapping[str, str]
    #: The client's address, after ``trusted_proxies`` resolution (see ``getPeer()``).
    peer: IAddress
    #: The server's address.
    host: IAddress
    #: Whether the request came over TLS (to this server; a proxy's own TLS is not seen).
    secure: bool

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header, or ``None``."""
        return self.headers.get("origin")


def _all_headers(request: IRequest) -> dict[str, str]:
    headers = {}
    for name, values in request.requestHeaders.getAllRawHeaders():
        key = _text(name).lower()
        separator = "; " if key == "cookie" else ", "
        headers[key] = separator.join(_text(value) for value in values)
    return headers


def _cookies(header: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, sep, value = pair.partition("=")
        name = name.strip()
        if sep and name and name not in cookies:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies[name] = value
    return cookies


def connect_request(
    request: IRequest, options: SockJSOptions, prefix: str, transport_name: str
) -> ConnectRequest:
    """The view of ``request``, which would open a session, for the ``authenticate`` hook."""
    uri = _text(request.uri)
    if transport_name != "raw-websocket":
        uri = _redact_session(uri)
    path, _, query = uri.partition("?")
    parsed = urllib.parse.parse_qs(query, keep_blank_values=True, errors="replace")
    headers = _all_headers(request)
    host = request.getHost()
    if not isinstance(host, (IPv4Address, IPv6Address, UNIXAddress)):
        host = IPv4Address("TCP", "0.0.0.0", 0)
    return ConnectRequest(
        transportName=transport_name,
        method=_text(request.method or b""),
        url=uri,
        path=path,
        prefix=prefix,
        args=MappingProxyType({name: tuple(values) for name, values in parsed.items()}),
        headers=MappingProxyType(headers),
        cookies=MappingProxyType(_cookies(headers.get("cookie", ""))),
        peer=client_address(request, options),
        host=host,
        secure=request.isSecure(),
    )
