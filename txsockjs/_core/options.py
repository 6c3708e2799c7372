"""
One frozen, validated options object for a SockJS service.

Every default lives here. Names follow sockjs-node's options; durations are in seconds, as
Twisted counts time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Union, cast

from twisted.web.iweb import IRequest

from .._policy.origin import ANY_ORIGIN, OriginPolicy

if TYPE_CHECKING:
    from .info import ConnectRequest

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
#: An ``authenticate`` hook: given a read-only view of the request that opens a session,
#: returns a principal (anything but ``None``), ``None`` or raises
#: :class:`txsockjs.auth.Refused` to refuse, or returns a Deferred (or coroutine) of either.
AuthenticateHook = Callable[["ConnectRequest"], Any]

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


def option(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    flag: str | None = "",
    metavar: str = "",
    kind: str = "",
    text: bool = True,
) -> Any:
    """
    Declare one option of :class:`SockJSOptions`: the one place an option is described.

    The ``twistd sockjs`` flag, the ``sockjs:`` endpoint key, the text conversion and the
    numeric check are derived from this declaration (see :func:`option_specs`).

    :param default: the default value.
    :param help: one sentence, shown by ``twistd sockjs --help``.
    :param minimum: for numbers: the smallest value accepted.
    :param flag: the ``twistd sockjs`` flag without ``--``; ``""`` derives it from the name
        (``--no-NAME`` for an option that is on by default), ``None`` means no flag. A
        repeatable option names its flag in the singular (``disable-transport``).
    :param metavar: what the flag's value is called in ``--help``.
    :param kind: how the option is written as text, when its annotation does not say it:
        ``bool``, ``int``, ``float``, ``str``, ``optional-str`` or ``list`` (repeatable flag,
        comma-separated endpoint value).
    :param text: ``False`` for options that take Python objects only (no flag, no key).
    """
    metadata = {
        "help": help,
        "minimum": minimum,
        "flag": flag,
        "metavar": metavar,
        "kind": kind,
        "text": text,
    }
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class SockJSOptions:
    """
    The options of one SockJS service, declared once: ``doc/options.rst`` explains each, and
    ``twistd sockjs`` flags and ``sockjs:`` endpoint keys are derived from these fields.

    Build it with :meth:`from_kwargs`, which validates every value; constructing it directly
    validates too.
    """

    sockjs_url: str = option(
        DEFAULT_SOCKJS_URL,
        "URL of the sockjs-client script the iframe page (and the demo page) load.",
        metavar="URL",
    )
    prefix: str = option(
        "/",
        "Where SockJSFactory and sockjs: endpoints mount the service.",
        flag=None,  # twistd sockjs has its own --prefix, whose default depends on --factory
    )
    websocket: bool = option(True, "Serve the websocket transports.")
    websocket_liveness: bool = option(
        True,
        "Ping websocket clients (every websocket_ping_interval); drop one that answers no ping "
        "before the next although its connection had room.",
    )
    websocket_ping_interval: float = option(
        25.0,
        "Seconds between the liveness pings of a SockJS websocket, rounded up to whole "
        "heartbeats (raw websockets are pinged with every heartbeat).",
        minimum=0.001,
        metavar="SECONDS",
    )
    websocket_compression: bool = option(
        False, "Offer permessage-deflate to websocket clients that ask for it."
    )
    disabled_transports: frozenset[str] = option(
        frozenset(),
        "Do not serve this transport (repeatable): " + ", ".join(sorted(TRANSPORT_NAMES)) + ".",
        flag="disable-transport",
        metavar="NAME",
    )
    response_limit: int = option(
        128 * 1024,
        "Bytes after which a streaming response is ended and the client reconnects.",
        minimum=1,
        metavar="BYTES",
    )
    jsessionid: bool | JSessionIDHook = option(
        False, "Set a JSESSIONID cookie, for load balancers that stick by it."
    )
    heartbeat_delay: float = option(
        25.0, "Seconds between heartbeat frames.", minimum=0.001, metavar="SECONDS"
    )
    disconnect_delay: float = option(
        5.0,
        "Seconds a session lives with no client attached.",
        minimum=0.001,
        metavar="SECONDS",
    )
    max_message_bytes: int = option(
        1024 * 1024,
        "Largest request body or websocket message accepted, in bytes.",
        minimum=2,
        metavar="BYTES",
    )
    max_sessions: int = option(
        100_000, "Most sessions open at once; new ones beyond it get 503.", minimum=1, metavar="N"
    )
    new_sessions_per_second: float = option(
        20.0,
        "New sessions one client address may open per second once its burst is spent; more "
        "get 429. 0: no limit. Loopback and UNIX socket clients are not limited.",
        minimum=0,
        metavar="RATE",
    )
    new_sessions_burst: int = option(
        100,
        "New sessions one client address may open at once, before the rate applies.",
        minimum=1,
        metavar="N",
    )
    new_sessions_tracked_addresses: int = option(
        10_000,
        "Client addresses whose rate of new sessions is remembered at once; beyond it the "
        "least recently seen one is forgotten.",
        minimum=1,
        metavar="N",
    )
    first_poll_deadline: float = option(
        3.0,
        "Seconds a session waits for its client's second receiving request once the first "
        "response has ended (at most disconnect_delay).",
        minimum=0.001,
        metavar="SECONDS",
    )
    max_pending_sends: int = option(
        8,
        "Send requests of one session that may wait at once for their messages to be "
        "delivered; more get 503.",
        minimum=1,
        metavar="N",
    )
    drain_timeout: float = option(
        10.0,
        "Seconds stopping the service waits for every session to be sent its queued "
        "messages and its close frame.",
        minimum=0,
        metavar="SECONDS",
    )
    high_watermark: int = option(
        1024 * 1024,
        "Queued bytes per session above which the producer is paused and the client not read.",
        minimum=1,
        metavar="BYTES",
    )
    low_watermark: int = option(
        256 * 1024,
        "Queued bytes per session below which producer and client are resumed.",
        minimum=0,
        metavar="BYTES",
    )
    max_queued_bytes: int = option(
        4 * 1024 * 1024,
        "Queued bytes per session above which its client is taken not to read: the session "
        "is closed with 1008.",
        minimum=1,
        metavar="BYTES",
    )
    trusted_proxies: tuple[Network, ...] = option(
        (),
        "IP address or network of a proxy whose X-Forwarded-For is believed (repeatable).",
        flag="trusted-proxy",
        metavar="ADDRESS",
    )
    expose_cookies: bool = option(
        False, "Show the Cookie header to the protocol (off: cookies invite CSRF)."
    )
    max_session_id_length: int = option(
        64,
        "Longest server or session id of a session URL; a longer one answers 404.",
        minimum=1,
        metavar="N",
    )
    max_header_bytes: int = option(
        4096,
        "Bytes of whitelisted request headers a session keeps for transport.headers.",
        minimum=0,
        metavar="BYTES",
    )
    base_url: str | None = option(
        None,
        "base_url reported by /info, for clients to use as their transport URL.",
        metavar="URL",
    )
    disable_cors: bool = option(False, "Send no CORS headers.")
    allowed_origins: OriginPolicy = option(
        ANY_ORIGIN,
        "An origin whose pages may use the service (repeatable): https://app.example.com, "
        "https://*.example.com, http://localhost:* or null; none given: any origin. A "
        "restricted service refuses other origins (403) and does not serve htmlfile, "
        "jsonp-polling and the iframe page.",
        flag="allow-origin",
        metavar="ORIGIN",
        kind="list",
    )
    authenticate: AuthenticateHook | None = option(
        None,
        "Dotted name of a callable given a view of the request that opens a session; it "
        "returns a principal, or None to refuse with 403 (or a Deferred of either).",
        metavar="NAME",
        kind="optional-str",
    )
    bind_session_to_host: bool = option(
        False,
        "Answer 404 to a poll or send of a session from a client host other than the one "
        "that opened it (never compares ports).",
    )
    log: LogHook | None = option(
        None, "A sockjs-node style log hook: callable(severity, line).", text=False
    )

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
        """
        Whether the transport named as sockjs-client names it is served: not disabled, and
        not one that a restricted ``allowed_origins`` policy switches off.
        """
        if transport in ("websocket", "raw-websocket") and not self.websocket:
            return False
        return transport not in self.disabled_transports and self.allowed_origins.serves(transport)


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


def _named_hook(name: str) -> Any:
    """The object a dotted name (``myapp.auth.authenticate``) names, for ``authenticate``."""
    from twisted.python.reflect import namedAny

    try:
        return namedAny(name)
    except Exception as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"authenticate: cannot import {name!r} ({type(error).__name__}: {reason})"
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
    for spec in option_specs():
        value = getattr(options, spec.name)
        if spec.kind == "bool" and spec.name != "jsessionid" and not isinstance(value, bool):
            raise TypeError(f"{spec.name} must be True or False, not {value!r}")
    unknown = sorted(set(options.disabled_transports) - TRANSPORT_NAMES)
    require(
        not unknown,
        f"disabled_transports: unknown transport(s) {', '.join(unknown)}; "
        f"known: {', '.join(sorted(TRANSPORT_NAMES))}",
    )
    for spec in option_specs():
        if spec.kind in ("int", "float") and spec.minimum is not None:
            number(spec.name, spec.minimum, integral=spec.kind == "int")
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
    object.__setattr__(
        options, "allowed_origins", OriginPolicy.from_value(options.allowed_origins)
    )
    if isinstance(options.authenticate, str):
        object.__setattr__(options, "authenticate", _named_hook(options.authenticate))
    if options.authenticate is not None and not callable(options.authenticate):
        raise TypeError(
            f"authenticate must be a callable(request) -> principal, not {options.authenticate!r}"
        )
    if options.log is not None and not callable(options.log):
        raise TypeError(f"log must be a callable(severity, message), not {options.log!r}")
    base_url = options.base_url
    if base_url is not None:
        if not isinstance(base_url, str):
            raise TypeError(f"base_url must be a string, not {base_url!r}")
        require(
            base_url.startswith(("http://", "https://", "/")),
            f"base_url must start with http://, https:// or /, not {base_url!r}",
        )


# -- the option table, derived from the declarations ---------------------------------------------

#: How an annotation is written as text, for options that do not say it with ``kind=``.
_ANNOTATION_KINDS = {
    "str": "str",
    "bool": "bool",
    "int": "int",
    "float": "float",
    "str | None": "optional-str",
    "frozenset[str]": "list",
    "tuple[Network, ...]": "list",
    "bool | JSessionIDHook": "bool",
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One option as the text interfaces (``twistd sockjs``, ``sockjs:``) see it."""

    name: str
    #: ``bool``, ``int``, ``float``, ``str``, ``optional-str``, ``list``, or ``""`` when the
    #: option has no text form.
    kind: str
    default: Any
    help: str
    #: The ``twistd sockjs`` flag (``--heartbeat-delay``, ``--no-websocket``), or ``None``.
    flag: str | None
    metavar: str
    minimum: float | None

    @property
    def repeatable(self) -> bool:
        return self.kind == "list"

    def parse(self, text: str) -> Any:
        """
        The value a text gives this option (an endpoint parameter, a flag's argument).

        :raises TypeError: when the text is not of the option's kind; the message is the
            one :class:`SockJSOptions` gives for a value of the wrong type.
        """
        if self.kind == "bool":
            lowered = text.strip().lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise TypeError(f"{self.name} must be True or False, not {text!r}")
        if self.kind in ("int", "float"):
            try:
                return int(text) if self.kind == "int" else float(text)
            except ValueError:
                article = "an integer" if self.kind == "int" else "a number"
                raise TypeError(f"{self.name} must be {article}, not {text!r}") from None
        if self.kind == "list":
            return tuple(word.strip() for word in text.split(",") if word.strip())
        if self.kind in ("str", "optional-str"):
            return text
        raise TypeError(f"the {self.name} option cannot be given as text")


def option_specs() -> tuple[OptionSpec, ...]:
    """Every option of :class:`SockJSOptions`, in declaration order."""
    return _SPECS


def _spec(field: dataclasses.Field[Any]) -> OptionSpec:
    metadata = field.metadata
    kind = ""
    if metadata.get("text", True):
        kind = metadata.get("kind") or _ANNOTATION_KINDS.get(str(field.type), "")
        if not kind:
            raise TypeError(f"option {field.name}: say how it is written as text (kind=)")
    flag: str | None = metadata.get("flag", "")
    if kind and flag == "":
        dashed = field.name.replace("_", "-")
        flag = f"no-{dashed}" if kind == "bool" and field.default is True else dashed
    return OptionSpec(
        name=field.name,
        kind=kind,
        default=field.default,
        help=metadata.get("help", ""),
        flag=f"--{flag}" if kind and flag else None,
        metavar=metadata.get("metavar") or "VALUE",
        minimum=metadata.get("minimum"),
    )


_SPECS = tuple(_spec(field) for field in dataclasses.fields(SockJSOptions))
_BY_NAME = {spec.name: spec for spec in _SPECS}


def parse_text_options(
    parameters: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """
    Split text parameters (of a ``sockjs:`` description) into SockJS options, converted
    from text, and the rest. txsockjs 1.x names are understood.

    :raises TypeError: for a value of the wrong kind, or an option with no text form.
    """
    options: dict[str, Any] = {}
    rest: dict[str, str] = {}
    for name, text in parameters.items():
        if name in _LEGACY_IGNORED:
            continue
        spec = _BY_NAME.get(_LEGACY_NAMES.get(name, name))
        if spec is None:
            rest[name] = text
        else:
            options[name] = spec.parse(text)
    return options, rest
