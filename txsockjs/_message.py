"""
For protocols that think in messages (text) rather than bytes: a base protocol, and a
broadcast that encodes a message once for many sessions.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.interfaces import ITransport
from twisted.internet.protocol import Protocol

from ._framing import encode_message
from ._session import Session


class MessageProtocol(Protocol):
    """
    A protocol that receives and sends SockJS messages as ``str``.

    Override :meth:`messageReceived`; call :meth:`sendMessage`.
    """

    def dataReceived(self, data: bytes) -> None:
        """One SockJS message arrived (UTF-8); hands it to :meth:`messageReceived`."""
        self.messageReceived(data.decode("utf-8", "surrogatepass"))

    def messageReceived(self, message: str) -> None:
        """Called once per message from the client."""

    def sendMessage(self, message: str) -> None:
        """Send one message to the client."""
        assert self.transport is not None, "sendMessage() before connectionMade()"
        self.transport.write(message.encode("utf-8", "surrogatepass"))


def broadcast(transports: Iterable[ITransport], message: str) -> None:
    """
    Send ``message`` to every transport, encoding it once for all SockJS sessions.

    Transports that are not SockJS sessions (a plain TCP connection in the same chat, say)
    get the UTF-8 bytes written.
    """
    encoded: bytes | None = None
    for transport in transports:
        if isinstance(transport, Session):
            if encoded is None:
                encoded = encode_message(message)
            transport.sendEncoded(encoded)
        else:
            transport.write(message.encode("utf-8", "surrogatepass"))
