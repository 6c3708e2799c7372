"""
Twisted plugins of txsockjs: the ``twistd sockjs`` command and the ``sockjs:`` endpoint.

Twisted imports every plugin module whenever any program looks for plugins, so this module
stays cheap: it names :mod:`txsockjs.tap` without importing it, and imports the endpoint
parser only when a ``sockjs:`` description is parsed.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import ServiceMaker
from twisted.internet.interfaces import IStreamServerEndpoint, IStreamServerEndpointStringParser
from twisted.plugin import IPlugin
from zope.interface import implementer

txsockjsServiceMaker = ServiceMaker(
    "txsockjs",
    "txsockjs.tap",
    "A SockJS server: any Twisted protocol factory, served to browsers over SockJS.",
    "sockjs",
)


@implementer(IPlugin, IStreamServerEndpointStringParser)
class _SockJSEndpointPlugin:
    """Parses ``sockjs:`` descriptions with :class:`txsockjs._web.endpoint.SockJSServerParser`."""

    prefix = "sockjs"

    def parseStreamServer(self, reactor: Any, *args: str, **kwargs: str) -> IStreamServerEndpoint:
        from txsockjs._web.endpoint import SockJSServerParser

        return SockJSServerParser().parseStreamServer(reactor, *args, **kwargs)


txsockjsEndpointParser = _SockJSEndpointPlugin()
