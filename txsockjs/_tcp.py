"""Socket settings for connections that carry SockJS frames."""

from __future__ import annotations

from typing import Any

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
