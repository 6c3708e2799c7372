"""Raw WebSocket echo on Twisted + autobahn, without SockJS: every text frame is sent back
as it came, one frame per message. It is the ceiling the SockJS server on the same stack is
measured against. For the idle workload it sends a text frame "h" to every connection every
HEARTBEAT seconds from one shared LoopingCall (the SockJS heartbeat, without SockJS).

Usage: python autobahn_raw_echo.py PORT HEARTBEAT_SECONDS
"""

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor
from twisted.internet.task import LoopingCall

CONNECTIONS: set["Echo"] = set()


class Echo(WebSocketServerProtocol):
    def onOpen(self) -> None:
        CONNECTIONS.add(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)

    def onClose(self, wasClean: bool, code: object, reason: object) -> None:
        CONNECTIONS.discard(self)


def heartbeat() -> None:
    for conn in list(CONNECTIONS):
        conn.sendMessage(b"h")


def main() -> None:
    port = int(sys.argv[1])
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 25.0
    factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}")
    factory.protocol = Echo
    # The same defaults a production server would run with; autobahn's C helpers (NVX)
    # are picked automatically when available.
    factory.setProtocolOptions(openHandshakeTimeout=30, closeHandshakeTimeout=5)
    reactor.listenTCP(port, factory, backlog=4096, interface="127.0.0.1")
    LoopingCall(heartbeat).start(interval, now=False)
    print(f"listening {port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
