"""
``twistd -n sockjs`` with candidate hot-path changes patched in at run time, to measure
each against the unpatched server in the same run (``run.py --servers
txsockjs,txsockjs-exp``). Nothing here is part of txsockjs; a change that pays off belongs
in the server itself. Which patches apply is chosen by ``TXSOCKJS_EXPERIMENT``
(comma-separated; default all):

``direct``
    write a websocket frame straight to the socket when the TCP transport has nothing
    buffered (``tcp.Connection.writeSomeData``), instead of buffering it and waiting for the
    reactor's next writable event: saves two ``epoll_ctl`` calls and one reactor dispatch
    per reply, the way libuv's ``uv_try_write`` does for Node.
``read``
    take websocket bytes in ``SessionWebSocketProtocol.dataReceived`` without autobahn's
    adapter, whose debug-log arguments (``hltype``/``hlval``, colourised by click) are built
    on every read even with logging off.
``nolater``
    no ``callLater(0)`` for sessions dirtied while a websocket read is being handled (the
    read flushes them itself), instead of scheduling and cancelling one per read.

``noform``
    really turn off twisted.web's form parsing of POST bodies: ``BodyLimitedRequest`` sets
    ``_parsePOSTFormSubmission = False`` on the class, but ``Request.__init__`` assigns the
    instance attribute (``parsePOSTFormSubmission=True``) over it, so every xhr_send still
    parses its Content-Type through the email package.
``tcpdirect``
    (not in the default set) the ``direct`` idea for every TCP write of the process, HTTP
    responses included.

Usage: python txsockjs_experiment.py PORT HEARTBEAT_SECONDS
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.internet import tcp
from twisted.scripts.twistd import run

from txsockjs._service import SessionService
from txsockjs.transports import websocket as ws

WANTED = set(
    (os.environ.get("TXSOCKJS_EXPERIMENT") or "direct,read,nolater,noform")
    .replace(" ", "")
    .split(",")
)


def patch_direct() -> None:
    original = ws.SessionWebSocketProtocol.sendText
    header16 = ws._HEADER16

    def sendText(self: Any, payload: bytes) -> None:
        transport = self.transport
        if (
            self.state != ws._STATE_OPEN
            or self.send_state != ws._SEND_GROUND
            or self._perMessageCompress is not None
            or type(transport) is not tcp.Server
            or transport.dataBuffer
            or transport._tempDataBuffer
            or transport.disconnecting
            or transport.producer is not None
            and transport.producerPaused
        ):
            original(self, payload)
            return
        length = len(payload)
        if length < 126:
            frame = bytes((0x81, length)) + payload
        elif length < 65536:
            frame = header16.pack(0x81, 126, length) + payload
        else:
            original(self, payload)
            return
        sent = transport.writeSomeData(frame)
        if isinstance(sent, int):
            if sent < len(frame):
                transport.write(frame[sent:])
        else:  # an error: let the ordinary path find it
            transport.write(frame)

    ws.SessionWebSocketProtocol.sendText = sendText


def patch_read() -> None:
    original = ws.SessionWebSocketProtocol.dataReceived
    open_ = ws._STATE_OPEN

    def dataReceived(self: Any, data: bytes) -> None:
        if self.state != open_:
            original(self, data)
            return
        self.data = self.data + data if self.data else data
        while self.processData() and self.state != self.STATE_CLOSED:
            pass
        self._service.flush()

    ws.SessionWebSocketProtocol.dataReceived = dataReceived


def patch_nolater() -> None:
    reading = [0]
    mark_dirty_original = SessionService.mark_dirty

    def mark_dirty(self: Any, session: Any) -> None:
        if reading[0]:
            self._dirty.append(session)
        else:
            mark_dirty_original(self, session)

    SessionService.mark_dirty = mark_dirty
    received = ws.SessionWebSocketProtocol.dataReceived

    def dataReceived(self: Any, data: bytes) -> None:
        reading[0] += 1
        try:
            received(self, data)
        finally:
            reading[0] -= 1
        self._service.flush()

    ws.SessionWebSocketProtocol.dataReceived = dataReceived


def patch_noform() -> None:
    from txsockjs._http import BodyLimitedRequest

    init = BodyLimitedRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    BodyLimitedRequest.__init__ = __init__


def patch_tcpdirect() -> None:
    write = tcp.Server.write

    def direct_write(self: Any, data: bytes) -> None:
        if (
            data
            and type(data) is bytes
            and self.connected
            and not self.disconnecting
            and not self.dataBuffer
            and not self._tempDataBuffer
            and not getattr(self, "TLS", False)
        ):
            sent = self.writeSomeData(data)
            if isinstance(sent, int):
                if sent == len(data):
                    return
                data = data[sent:]
        write(self, data)

    tcp.Server.write = direct_write


def main() -> None:
    port, heartbeat = sys.argv[1], sys.argv[2]
    if "direct" in WANTED:
        patch_direct()
    if "read" in WANTED:
        patch_read()
    if "nolater" in WANTED:
        patch_nolater()
    if "noform" in WANTED:
        patch_noform()
    if "tcpdirect" in WANTED:
        patch_tcpdirect()
    print(f"experiment patches: {sorted(WANTED)}", flush=True)
    sys.argv = [
        "twistd",
        "-n",
        "--pidfile=",
        "-l",
        "-",
        "sockjs",
        "--listen",
        f"tcp:{port}:interface=127.0.0.1:backlog=4096",
        "--heartbeat-delay",
        heartbeat,
    ]
    run()


if __name__ == "__main__":
    main()
