"""
The origin policy of a SockJS service: which web pages may use it.

One :class:`OriginPolicy` per service, built from the ``allowed_origins`` option, decides
everything that depends on the ``Origin`` of a request: the CORS answers, the refusal of
requests and websocket handshakes from foreign pages, and which transports can be served at
all (htmlfile, jsonp and the iframe page give the server no ``Origin`` to check, so a
restricted policy switches them off).

An origin is what browsers send in the ``Origin`` header: ``scheme://host[:port]``, lowercase,
without the default port, or ``null`` for an opaque origin (a sandboxed iframe, a ``file:``
page, a page reached through a cross-origin redirect).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from twisted.logger import Logger
from twisted.web.iweb import IRequest

from .._core.events import OBSERVER

_log = Logger(observer=OBSERVER)

#: An ``allowed_origins`` callable: given the request's ``Origin`` (``"null"`` included),
#: whether that page may use the service.
OriginCheck = Callable[[str], bool]

#: The pattern that allows every origin.
ANY = "*"
#: The opaque origin; never matched by a host wildcard, only when listed as such.
NULL = "null"

#: The transports whose requests carry no ``Origin`` the server could check: a page from
#: anywhere can load them with ``<script>`` or ``<iframe>``. A restricted policy turns them
#: off, and the iframe page with them.
UNCHECKABLE_TRANSPORTS = frozenset({"htmlfile", "jsonp-polling"})

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

_SCHEME = r"(?P<scheme>[a-z][a-z0-9+.-]*)"
_HOST = r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_~-]+(?:\.[a-z0-9_~-]+)*)"
_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
#: An origin as a request sends it.
_ORIGIN = re.compile(_SCHEME + "://" + _HOST + _PORT + r"\Z")
#: An origin as the option allows it: a ``*.`` host wildcard, a ``:*`` port wildcard, and a
#: trailing ``/`` (as an origin copied from an address bar has) are allowed.
_PATTERN = re.compile(
    _SCHEME + r"://(?P<wild>\*\.)?" + _HOST + r"(?::(?P<port>[0-9]{1,5}|\*))?/?\Z"
)

Origin = tuple[str, str, int]

#: How many origins' verdicts a policy remembers; it forgets them all when full.
_KNOWN_ORIGINS = 1024


def _port(scheme: str, port: str | None) -> int:
    if port is None:
        return _DEFAULT_PORTS.get(scheme, 0)
    return int(port)


def parse_origin(text: str) -> Origin | None:
    """``(scheme, host, port)`` of an origin sent by a client, or ``None`` if it is not one."""
    match = _ORIGIN.match(text.strip().lower())
    if match is None:
        return None
    scheme = match["scheme"]
    return scheme, match["host"], _port(scheme, match["port"])


class _Pattern:
    """One allowed origin, exact or with a host or port wildcard."""

    __slots__ = ("any_port", "host", "port", "scheme", "suffix")

    def __init__(self, text: str):
        match = _PATTERN.match(text.strip().lower())
        if match is None:
            raise ValueError(
                f"allowed_origins: {text!r} is not an origin such as 'https://app.example.com', "
                "'https://*.example.com', 'http://localhost:*' or 'null'"
            )
        self.scheme: str = match["scheme"]
        host: str = match["host"]
        #: For ``*.example.com``: ``.example.com``; a host must end with it and be longer.
        self.suffix = "." + host if match["wild"] else ""
        if self.suffix and host.startswith("["):
            raise ValueError(f"allowed_origins: {text!r}: an IP address takes no wildcard")
        self.host = host
        self.any_port = match["port"] == "*"
        self.port = 0 if self.any_port else _port(self.scheme, match["port"])

    def matches(self, origin: Origin) -> bool:
        scheme, host, port = origin
        if scheme != self.scheme or not (self.any_port or port == self.port):
            return False
        if self.suffix:
            return host.endswith(self.suffix) and not host.startswith("[")
        return host == self.host


class OriginPolicy:
    """
    Which origins may use a service: any (the default), those matching a list of patterns,
    or those a callable accepts.

    Build it with :meth:`from_value`; :class:`~txsockjs.SockJSOptions` does so for the
    ``allowed_origins`` option.
    """

    __slots__ = ("_allow_null", "_check", "_known", "_patterns", "_texts")

    def __init__(self, patterns: Iterable[str] = (), check: OriginCheck | None = None) -> None:
        texts = tuple(patterns)
        if check is not None and texts:
            raise ValueError("allowed_origins: give a list of origins or a callable, not both")
        if ANY in texts:
            texts = ()
        self._texts = texts
        self._check = check
        self._allow_null = any(text.strip().lower() == NULL for text in texts)
        self._patterns = tuple(_Pattern(text) for text in texts if text.strip().lower() != NULL)
        #: Verdicts on origins already met (a page's requests repeat its origin), bounded.
        self._known: dict[str, bool] = {}

    @classmethod
    def from_value(cls, value: Any) -> OriginPolicy:
        """
        The policy an ``allowed_origins`` value describes: an :class:`OriginPolicy`, ``None``
        or an empty list (any origin), a string or a list of strings (``"*"`` is any origin),
        or a callable taking the origin and returning whether it is allowed.

        :raises TypeError: for a value of another type.
        :raises ValueError: for a string that is not an origin pattern.
        """
        if isinstance(value, OriginPolicy):
            return value
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls((value,))
        if callable(value):
            return cls(check=value)
        if isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                if not isinstance(item, str):
                    raise TypeError(f"allowed_origins: {item!r} is not a string")
            return cls(sorted(value) if isinstance(value, (set, frozenset)) else value)
        raise TypeError(
            "allowed_origins must be a list of origins or a callable(origin) -> bool, "
            f"not {value!r}"
        )

    @property
    def restricted(self) -> bool:
        """Whether some origins are refused (else every origin is allowed)."""
        return self._check is not None or bool(self._texts)

    def allows(self, origin: str) -> bool:
        """Whether a page of ``origin`` (the text of an ``Origin`` header) may use the service."""
        if self._check is not None:
            try:
                return bool(self._check(origin))
            except Exception:
                _log.failure("The allowed_origins callable raised; the origin is refused")
                return False
        if not self._texts:
            return True
        known = self._known.get(origin)
        if known is None:
            known = self._match(origin)
            if len(self._known) >= _KNOWN_ORIGINS:
                self._known.clear()
            self._known[origin] = known
        return known

    def _match(self, origin: str) -> bool:
        if origin.strip().lower() == NULL:
            return self._allow_null
        parsed = parse_origin(origin)
        return parsed is not None and any(pattern.matches(parsed) for pattern in self._patterns)

    def allows_request(self, request: IRequest, websocket: bool = False) -> bool:
        """
        Whether ``request`` may open or use a session: it names no origin (a request a
        browser makes from a page sends one, or is same-origin), or an allowed one.

        Several ``Origin`` headers are refused by a restricted policy, as no browser sends
        them. A websocket handshake of the hybi-07/08 drafts names its origin in
        ``Sec-WebSocket-Origin``.
        """
        if not self.restricted:
            return True
        headers = request.requestHeaders
        values = headers.getRawHeaders(b"origin")
        if values is None and websocket:
            values = headers.getRawHeaders(b"sec-websocket-origin")
        if values is None:
            return True
        if len(values) != 1:
            return False
        return self.allows(values[0].decode("latin-1"))

    def serves(self, transport: str) -> bool:
        """Whether the policy lets the transport (named as sockjs-client names it) be served."""
        return not (self.restricted and transport in UNCHECKABLE_TRANSPORTS)

    @property
    def serves_iframe(self) -> bool:
        """
        Whether the iframe page is served: any page may frame it and drive the iframe-based
        transports from inside it, with the service's own origin.
        """
        return not self.restricted

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OriginPolicy):
            return NotImplemented
        return (self._texts, self._check) == (other._texts, other._check)

    def __hash__(self) -> int:
        return hash((self._texts, self._check))

    def __repr__(self) -> str:
        if self._check is not None:
            return f"OriginPolicy(check={self._check!r})"
        if not self._texts:
            return "OriginPolicy(any origin)"
        return f"OriginPolicy({list(self._texts)!r})"


#: The default policy: every origin may use the service.
ANY_ORIGIN = OriginPolicy()
