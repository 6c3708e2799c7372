"""Socket settings for connections that carry SockJS frames."""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp
from twisted.internet.interfaces import ITCPTransport


def no_delay(transport: Any) -> None:
    """
    Turn off Nagle's algorithm on a connection frames are streamed over.

    Frames are small and written as they come; with Nagle on, each waits for the peer's
    delayed ACK (up to 40 ms on Linux) before it leaves. TLS and other wrapping transports
    are unwrapped down to the TCP transport; anything else is left alone.
    """
    seen = 0
    while transport is not None and seen < 4:
        if ITCPTransport.providedBy(transport):
            try:
                transport.setTcpNoDelay(True)
            except OSError:
                pass
            return
        transport = getattr(transport, "transport", None)
        seen += 1


def write_now(transport: Any, data: bytes) -> None:
    """
    Write ``data``, sending it at once when the connection has nothing buffered.

    ``transport.write`` buffers and asks the reactor to watch the socket for writability,
    which costs two ``epoll_ctl`` calls and a wake-up per burst; a websocket mostly sends
    one small frame at a time to an idle socket. On a plain TCP connection with an empty
    buffer the frame goes straight to ``send``; whatever the socket does not take (and
    everything in any other case) goes through ``transport.write`` as usual, so ordering,
    producers and disconnection behave exactly as Twisted defines them.
    """
    if (
        type(transport) is tcp.Server
        and transport.connected
        and not transport.disconnecting
        and not transport.dataBuffer
        and not transport._tempDataBuffer
    ):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int) and sent >= 0:
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)
