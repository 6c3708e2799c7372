"""
The ``sockjs:`` server endpoint description.

``sockjs:tcp:8080:prefix=/irc`` listens where the wrapped description (here ``tcp:8080``)
listens, and serves the protocol factory handed to ``listen()`` over SockJS, at ``prefix``.
Every other SockJS option may be given as a parameter as well; parameters that are not
SockJS options are handed to the wrapped endpoint (``interface=127.0.0.1``, ``privateKey=``).

The txsockjs 1.x form, with the wrapped description escaped into one argument
(``sockjs:tcp\\:8080:websocket=false``), is accepted too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IReactorTime,
    IStreamServerEndpoint,
    IStreamServerEndpointStringParser,
)
from twisted.plugin import IPlugin
from zope.interface import implementer

__all__ = ["SockJSServerEndpoint", "SockJSServerParser", "parseOptionValues"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _boolean(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"sockjs endpoint: {name} must be true or false, not {text!r}")


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"sockjs endpoint: {name} must be an integer, not {text!r}") from None


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"sockjs endpoint: {name} must be a number, not {text!r}") from None


def _text(name: str, text: str) -> str:
    return text


def _words(name: str, text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(",") if word.strip())


#: How each option given as an endpoint parameter turns from text into a value. The names of
#: txsockjs 1.x are here too; :meth:`txsockjs.SockJSOptions.from_kwargs` maps them.
_CONVERTERS: Mapping[str, Callable[[str, str], Any]] = {
    "sockjs_url": _text,
    "prefix": _text,
    "websocket": _boolean,
    "disabled_transports": _words,
    "response_limit": _integer,
    "jsessionid": _boolean,
    "heartbeat_delay": _number,
    "disconnect_delay": _number,
    "max_message_bytes": _integer,
    "max_sessions": _integer,
    "high_watermark": _integer,
    "low_watermark": _integer,
    "trusted_proxies": _words,
    "expose_cookies": _boolean,
    "base_url": _text,
    "disable_cors": _boolean,
    # txsockjs 1.x names
    "streaming_limit": _integer,
    "heartbeat": _number,
    "timeout": _number,
    "cookie_needed": _boolean,
    "encoding": _text,
    "proxy_header": _text,
}

#: Options that take a Python object and so cannot be written in an endpoint description.
UNSUPPORTED_OPTIONS = frozenset({"log"})


def parseOptionValues(parameters: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """
    Split endpoint parameters into SockJS options (converted from text) and the rest.

    :param parameters: the ``name=value`` parameters of a ``sockjs:`` description.
    :return: the SockJS options as keyword arguments, and the parameters that belong to
        the wrapped endpoint.
    :raises ValueError: when a SockJS option's value cannot be converted.
    """
    options: dict[str, Any] = {}
    rest: dict[str, str] = {}
    for name, text in parameters.items():
        converter = _CONVERTERS.get(name)
        if converter is not None:
            options[name] = converter(name, text)
        elif name in UNSUPPORTED_OPTIONS:
            raise ValueError(f"sockjs endpoint: the {name} option cannot be given as text")
        else:
            rest[name] = text
    return options, rest


def _quote(text: str) -> str:
    """Escape text for one field of an endpoint description."""
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def wrappedDescription(args: tuple[str, ...], parameters: Mapping[str, str]) -> str:
    """
    Rebuild the description of the wrapped endpoint from what the parser was given.

    :param args: the positional fields after ``sockjs:``. A single field holding a colon is
        a whole description escaped into one field (the txsockjs 1.x form) and is kept as it
        is; otherwise the fields are joined again.
    :param parameters: the ``name=value`` fields that are not SockJS options.
    :raises ValueError: when there is no wrapped description.
    """
    if not args:
        raise ValueError("sockjs endpoint: name the endpoint to wrap, as in sockjs:tcp:8080")
    if len(args) == 1 and ":" in args[0]:
        fields = [args[0]]
    else:
        fields = [_quote(arg) for arg in args]
    fields.extend(f"{_quote(name)}={_quote(value)}" for name, value in parameters.items())
    return ":".join(fields)


@implementer(IStreamServerEndpoint)
class SockJSServerEndpoint:
    """
    A server endpoint that serves, over SockJS, the factories it is asked to listen with.

    :param wrapped: the endpoint that really listens.
    :param options: SockJS options, as keyword arguments of :class:`txsockjs.SockJSFactory`.
    :param reactor: the time source of the service's timers; the global reactor if ``None``.
    """

    def __init__(
        self,
        wrapped: IStreamServerEndpoint,
        options: Mapping[str, Any],
        reactor: IReactorTime | None = None,
    ) -> None:
        self.wrapped = wrapped
        self.options = dict(options)
        self.reactor = reactor

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint with ``protocolFactory`` wrapped in a
        :class:`txsockjs.SockJSFactory`.
        """
        from txsockjs import SockJSFactory

        factory = SockJSFactory(protocolFactory, reactor=self.reactor, **self.options)
        return self.wrapped.listen(factory)

    def __repr__(self) -> str:
        return f"<SockJSServerEndpoint {self.wrapped!r} {self.options!r}>"


@implementer(IPlugin, IStreamServerEndpointStringParser)
class SockJSServerParser:
    """
    The parser of ``sockjs:`` server endpoint descriptions, found by Twisted as a plugin.
    """

    prefix = "sockjs"

    def parseStreamServer(
        self, reactor: IReactorCore, *args: object, **kwargs: object
    ) -> IStreamServerEndpoint:
        """
        Parse ``sockjs:<wrapped description>[:option=value]...``.

        :raises ValueError: for a missing wrapped description or an invalid option.
        :raises TypeError: for a SockJS option value of the wrong kind.
        """
        from txsockjs._options import SockJSOptions

        options, rest = parseOptionValues({name: str(value) for name, value in kwargs.items()})
        # Validate now, so that a bad description fails where it is parsed.
        SockJSOptions.from_kwargs(**options)
        description = wrappedDescription(tuple(str(arg) for arg in args), rest)
        wrapped = serverFromString(reactor, description)
        return SockJSServerEndpoint(wrapped, options, cast(IReactorTime, reactor))
