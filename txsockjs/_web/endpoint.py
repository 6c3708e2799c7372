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

from collections.abc import Mapping
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

__all__ = ["SockJSServerEndpoint", "SockJSServerParser", "parse_option_values"]


def parse_option_values(parameters: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """
    Split endpoint parameters into SockJS options (converted from text) and the rest.

    Which names are options, and how each is written as text, comes from the declarations
    of :class:`txsockjs.SockJSOptions` (txsockjs 1.x names included).

    :param parameters: the ``name=value`` parameters of a ``sockjs:`` description.
    :return: the SockJS options as keyword arguments, and the parameters that belong to
        the wrapped endpoint.
    :raises ValueError: when a SockJS option's value cannot be converted.
    """
    from txsockjs._core.options import parse_text_options

    try:
        return parse_text_options(parameters)
    except TypeError as error:
        raise ValueError(f"sockjs endpoint: {error}") from None


def _quote(text: str) -> str:
    """Escape text for one field of an endpoint description."""
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def wrapped_description(args: tuple[str, ...], parameters: Mapping[str, str]) -> str:
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
        from txsockjs._core.options import SockJSOptions

        options, rest = parse_option_values({name: str(value) for name, value in kwargs.items()})
        # Validate now, so that a bad description fails where it is parsed.
        SockJSOptions.from_kwargs(**options)
        description = wrapped_description(tuple(str(arg) for arg in args), rest)
        wrapped = serverFromString(reactor, description)
        return SockJSServerEndpoint(wrapped, options, cast(IReactorTime, reactor))
