"""
A reference websocket echo server for Autobahn|Testsuite: autobahn's own Twisted
implementation, so that a run against txsockjs can be compared with a run against it.

    python3 tools/autobahn/reference_echo.py [PORT]

Listens on 127.0.0.1 (port 0, the default, picks a free one) and prints
``reference echo listening on port N`` once it does. Every text or binary message is sent
back as it came; autobahn handles pings and the closing handshake.
"""

from __future__ import annotations

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor


class Echo(WebSocketServerProtocol):
    """Sends every message back, with its type (text or binary)."""

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    factory = WebSocketServerFactory()
    factory.protocol = Echo
    # The suite's limits (cases 9.*) go up to 16 MiB messages: no smaller limit here.
    factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
    listening = reactor.listenTCP(port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"reference echo listening on port {listening.getHost().port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
