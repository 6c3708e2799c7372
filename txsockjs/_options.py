"""
One frozen, validated options object for a SockJS service.

Every default lives here. Names follow sockjs-node's options; durations are in seconds, as
Twisted counts time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union, cast

from twisted.web.iweb import IRequest

#: The sockjs-client build the iframe page loads unless told otherwise (sockjs-node's default).
DEFAULT_SOCKJS_URL = "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"

#: Transport names accepted by ``disabled_transports``, as sockjs-client names them.
TRANSPORT_NAMES = frozenset(
    {
        "websocket",
        "xhr-streaming",
        "xhr-polling",
        "eventsource",
        "htmlfile",
        "jsonp-polling",
        "raw-websocket",
    }
)

#: A ``log`` hook: called with a severity (``"debug"``, ``"info"`` or ``"error"``) and a line.
LogHook = Callable[[str, str], None]
#: A ``jsessionid`` hook: called with the request, sets the cookie itself.
JSessionIDHook = Callable[[IRequest], None]

#: Options of txsockjs 1.x, mapped to their current names.
_LEGACY_NAMES = {
    "streaming_limit": "response_limit",
    "heartbeat": "heartbeat_delay",
    "timeout": "disconnect_delay",
    "cookie_needed": "jsessionid",
}
#: Options of txsockjs 1.x that no longer mean anything; accepted and ignored.
_LEGACY_IGNORED = frozenset({"encoding", "proxy_header"})

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007


@dataclasses.dataclass(frozen=True)
class SockJSOptions:
    """
    The options of one SockJS service.

    Build it with :meth:`from_kwargs`, which validates every value; constructing it directly
    validates too.
    """

    #: URL of the sockjs-client script the iframe page loads (``http(s)://`` or ``/...``).
    sockjs_url: str = DEFAULT_SOCKJS_URL
    #: Where :class:`~txsockjs.SockJSFactory` mounts the service; unused by the resource.
    prefix: str = "/"
    #: Serve the SockJS websocket transport (and the raw websocket endpoint).
    websocket: bool = True
    #: Ping websocket clients with every heartbeat and drop one that has not answered by the
    #: next heartbeat although its connection had room (a full one is slow, not dead).
    websocket_liveness: bool = True
    #: Offer permessage-deflate to websocket clients that ask for it (costs memory per
    #: session; see the operations guide).
    websocket_compression: bool = False
    #: Transport names (see :data:`TRANSPORT_NAMES`) that are not served.
    disabled_transports: frozenset[str] = frozenset()
    #: Bytes of frames after which a streaming response is ended, so the client reconnects.
    response_limit: int = 128 * 1024
    #: Set a ``JSESSIONID`` cookie for load balancers: a bool, or a callable that sets it.
    jsessionid: bool | JSessionIDHook = False
    #: Seconds between heartbeat frames while a receiver is attached.
    heartbeat_delay: float = 25.0
    #: Seconds a session lives without a receiver before it is closed.
    disconnect_delay: float = 5.0
    #: The largest request body or websocket message accepted, in bytes.
    max_message_bytes: int = 1024 * 1024
    #: The most sessions open at once; further new sessions are answered 503.
    max_sessions: int = 100_000
    #: Queued outgoing bytes above which the application's producer is paused.
    high_watermark: int = 1024 * 1024
    #: Queued outgoing bytes below which a paused producer is resumed.
    low_watermark: int = 256 * 1024
    #: Queued outgoing bytes of one session (or held incoming ones) above which its client
    #: is taken not to read: the queue is dropped and the session closed with 1008.
    max_queued_bytes: int = 4 * 1024 * 1024
    #: Proxies whose ``X-Forwarded-For`` header is believed (addresses or networks).
    trusted_proxies: tuple[Network, ...] = ()
    #: Hand the ``Cookie`` header to the application (off: cookies invite CSRF).
    expose_cookies: bool = False
    #: The longest server id or session id of a session URL; a longer one answers 404.
    max_session_id_length: int = 64
    #: Bytes of whitelisted request headers (names and values) a session keeps for
    #: ``transport.headers``; a header that does not fit in what is left is left out.
    max_header_bytes: int = 4096
    #: ``base_url`` reported by ``/info``, for clients to use as the transport URL.
    base_url: str | None = None
    #: Send no CORS headers at all.
    disable_cors: bool = False
    #: A sockjs-node style log hook, called besides :mod:`twisted.logger`.
    log: LogHook | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_kwargs(
        cls, options: Mapping[str, Any] | None = None, /, **kwargs: Any
    ) -> SockJSOptions:
        """
        Build options from keywords, or from a txsockjs 1.x style dict, or both.

        :raises TypeError: for an unknown option name or a value of the wrong type.
        :raises ValueError: for a value out of range.
        """
        merged: dict[str, Any] = {}
        for source in (options or {}, kwargs):
            for name, value in source.items():
                if name in _LEGACY_IGNORED:
                    continue
                merged[_LEGACY_NAMES.get(name, name)] = value
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise TypeError(f"unknown SockJS option(s): {', '.join(unknown)}")
        if "disabled_transports" in merged:
            merged["disabled_transports"] = frozenset(_names(merged["disabled_transports"]))
        if "trusted_proxies" in merged:
            merged["trusted_proxies"] = tuple(_networks(merged["trusted_proxies"]))
        return cls(**merged)

    def enabled(self, transport: str) -> bool:
        """Whether the transport named as sockjs-client names it is served."""
        if transport in ("websocket", "raw-websocket") and not self.websocket:
            return False
        return transport not in self.disabled_transports


def _names(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return [value]
    return list(value)


def _networks(value: Any) -> Iterable[Network]:
    for item in _names(value):
        if isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            yield item
        else:
            try:
                yield ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IP address or network"
                ) from None


def _validate(options: SockJSOptions) -> None:
    def require(condition: bool, message: str) -> None:
        if not condition:
            raise ValueError(message)

    def number(name: str, minimum: float, integral: bool = False) -> None:
        value: Any = getattr(options, name)
        kinds: tuple[type, ...] = (int,) if integral else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            kind = "an integer" if integral else "a number"
            raise TypeError(f"{name} must be {kind}, not {value!r}")
        require(cast(float, value) >= minimum, f"{name} must be at least {minimum}, not {value!r}")

    url = options.sockjs_url
    if not isinstance(url, str):
        raise TypeError(f"sockjs_url must be a string, not {url!r}")
    require(
        url.startswith(("http://", "https://", "/")) and '"' not in url and "<" not in url,
        f"sockjs_url must start with http://, https:// or / and contain no quote: {url!r}",
    )
    if not isinstance(options.prefix, str) or not options.prefix.startswith("/"):
        raise ValueError(f"prefix must be a string starting with '/', not {options.prefix!r}")
    for flag in (
        "websocket",
        "websocket_liveness",
        "websocket_compression",
        "expose_cookies",
        "disable_cors",
    ):
        if not isinstance(getattr(options, flag), bool):
            raise TypeError(f"{flag} must be True or False, not {getattr(options, flag)!r}")
    unknown = sorted(set(options.disabled_transports) - TRANSPORT_NAMES)
    require(
        not unknown,
        f"disabled_transports: unknown transport(s) {', '.join(unknown)}; "
        f"known: {', '.join(sorted(TRANSPORT_NAMES))}",
    )
    number("response_limit", 1, integral=True)
    number("heartbeat_delay", 0.001)
    number("disconnect_delay", 0.001)
    number("max_message_bytes", 2, integral=True)
    number("max_sessions", 1, integral=True)
    number("high_watermark", 1, integral=True)
    number("low_watermark", 0, integral=True)
    number("max_queued_bytes", 1, integral=True)
    require(
        options.low_watermark <= options.high_watermark,
        "low_watermark must not exceed high_watermark",
    )
    require(
        options.high_watermark <= options.max_queued_bytes,
        "high_watermark must not exceed max_queued_bytes",
    )
    if not (isinstance(options.jsessionid, bool) or callable(options.jsessionid)):
        raise TypeError(f"jsessionid must be a bool or a callable, not {options.jsessionid!r}")
    if options.log is not None and not callable(options.log):
        raise TypeError(f"log must be a callable(severity, message), not {options.log!r}")
    if options.base_url is not None and not isinstance(options.base_url, str):
        raise TypeError(f"base_url must be a string, not {options.base_url!r}")
    number("max_session_id_length", 1, integral=True)
    number("max_header_bytes", 0, integral=True)
