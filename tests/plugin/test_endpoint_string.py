"""
The ``sockjs:`` endpoint description: parsing, found as a plugin, and used by a real program
of Twisted's own (``twistd portforward``) with no change to that program.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sockjs_helpers import ServerProcess, XHRSession, info, twistd
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.interfaces import IStreamServerEndpointStringParser
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.protocols.wire import Echo
from twisted.web.server import Site
from zope.interface.verify import verifyObject

from txsockjs._web.endpoint import SockJSServerEndpoint, SockJSServerParser


def parse(description: str) -> SockJSServerEndpoint:
    endpoint = serverFromString(MemoryReactorClock(), description)
    assert isinstance(endpoint, SockJSServerEndpoint)
    return endpoint


def test_pluginIsFound() -> None:
    parsers = [
        parser
        for parser in getPlugins(IStreamServerEndpointStringParser)
        if parser.prefix == "sockjs"
    ]
    assert len(parsers) == 1
    verifyObject(IStreamServerEndpointStringParser, parsers[0])
    verifyObject(IStreamServerEndpointStringParser, SockJSServerParser())


def test_optionsAndWrappedEndpoint() -> None:
    endpoint = parse(
        "sockjs:tcp:8080:interface=127.0.0.1:prefix=/irc:heartbeat_delay=2.5"
        ":websocket=false:disabled_transports=htmlfile,jsonp-polling:jsessionid=yes"
        ":trusted_proxies=10.0.0.0/8,127.0.0.1"
    )
    assert isinstance(endpoint.wrapped, TCP4ServerEndpoint)
    assert endpoint.wrapped._port == 8080
    assert endpoint.wrapped._interface == "127.0.0.1"
    assert endpoint.options == {
        "prefix": "/irc",
        "heartbeat_delay": 2.5,
        "websocket": False,
        "disabled_transports": ("htmlfile", "jsonp-polling"),
        "jsessionid": True,
        "trusted_proxies": ("10.0.0.0/8", "127.0.0.1"),
    }


def test_txsockjs1Form() -> None:
    endpoint = parse(r"sockjs:tcp\:9090\:interface\=127.0.0.1:websocket=false:timeout=7")
    assert isinstance(endpoint.wrapped, TCP4ServerEndpoint)
    assert endpoint.wrapped._port == 9090
    assert endpoint.wrapped._interface == "127.0.0.1"
    assert endpoint.options == {"websocket": False, "timeout": 7.0}


def test_escapedValuesSurviveTheRewrap() -> None:
    endpoint = parse(r"sockjs:unix:/tmp/a\:b.sock:mode=600:base_url=http\://example.test/x")
    assert isinstance(endpoint.wrapped, UNIXServerEndpoint)
    assert endpoint.wrapped._address == "/tmp/a:b.sock"
    assert endpoint.options == {"base_url": "http://example.test/x"}


@pytest.mark.parametrize(
    "description",
    [
        "sockjs",
        "sockjs:tcp:8080:heartbeat_delay=soon",
        "sockjs:tcp:8080:websocket=perhaps",
        "sockjs:tcp:8080:response_limit=big",
        "sockjs:tcp:8080:disabled_transports=carrier-pigeon",
        "sockjs:tcp:8080:sockjs_url=javascript\\:alert(1)",
        "sockjs:tcp:8080:log=print",
        "sockjs:tcp:8080:high_watermark=1:low_watermark=2",
        "sockjs:carrier-pigeon:8080",
    ],
)
def test_badDescriptions(description: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        serverFromString(MemoryReactorClock(), description)


def test_listenWrapsTheFactory() -> None:
    reactor = MemoryReactorClock()
    endpoint = serverFromString(reactor, "sockjs:tcp:8080:prefix=/echo:response_limit=4096")
    factory = Factory.forProtocol(Echo)
    endpoint.listen(factory)
    [(port, wrapper, _, _)] = reactor.tcpServers
    assert port == 8080
    assert isinstance(wrapper, Site)
    assert wrapper is not factory


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


@pytest.fixture
def tcpEcho() -> Iterator[int]:
    """A plain TCP echo server (standard library, on a thread) on 127.0.0.1."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_twistdPortforwardOverSockJS(tcpEcho: Any) -> None:
    """
    ``twistd portforward`` takes an endpoint description for its listening port; given a
    ``sockjs:`` one, it forwards SockJS sessions to a TCP server, with no change to it.
    """
    args = twistd() + [
        "-n",
        "--pidfile=",
        "--logfile=-",
        "portforward",
        "--port=sockjs:tcp:0:interface=127.0.0.1:prefix=/fwd:heartbeat_delay=5",
        "--host=127.0.0.1",
        f"--dest_port={tcpEcho}",
    ]
    with ServerProcess(args) as server:
        port = server.port(r"starting on (\d+)")
        base = f"http://127.0.0.1:{port}/fwd"
        assert info(base)["websocket"] is True
        session = XHRSession(base)
        session.send("hello, ", "forwarded world")
        received = session.receiveUntil(
            lambda got: "".join(got) == "hello, forwarded world", polls=20
        )
        assert "".join(received) == "hello, forwarded world"
