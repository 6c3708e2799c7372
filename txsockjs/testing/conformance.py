"""
The server the official SockJS conformance suite and the browser tests run against.

``python -m txsockjs.testing.conformance --port 8081`` listens on 127.0.0.1 and serves
``/echo`` (response_limit 4096), ``/disabled_websocket_echo``, ``/cookie_needed_echo`` and
``/close`` (closes each session at once with 3000 "Go away!").
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.web.resource import Resource

from .. import SockJSMultiFactory


class Echo(Protocol):
    """Sends every message back."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class CloseAtOnce(Protocol):
    """Closes the session as soon as it opens."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.loseConnection()


def build_site(sockjs_url: str | None = None, **options: Any) -> SockJSMultiFactory:
    """A listening factory with the four services the conformance suite expects."""
    if sockjs_url is not None:
        options["sockjs_url"] = sockjs_url
    echo = Factory.forProtocol(Echo)
    site = SockJSMultiFactory()
    site.addFactory(echo, "/echo", response_limit=4096, **options)
    site.addFactory(echo, "/disabled_websocket_echo", websocket=False, **options)
    site.addFactory(echo, "/cookie_needed_echo", jsessionid=True, **options)
    site.addFactory(Factory.forProtocol(CloseAtOnce), "/close", **options)
    return site


def build_root(sockjs_url: str | None = None, **options: Any) -> Resource:
    """The resource tree of :func:`build_site`, to mount in a site of your own."""
    root: Resource = build_site(sockjs_url, **options).resource
    return root


def main(argv: list[str] | None = None) -> None:
    """Run the conformance server until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--sockjs-url", default=None)
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.info)]
    )
    globalLogBeginner.beginLoggingTo([observer])
    site: Any = build_site(args.sockjs_url)
    reactor.listenTCP(args.port, site, interface=args.interface, backlog=1024)
    reactor.run()


if __name__ == "__main__":
    main()
