"""
For protocols that think in messages (text) rather than bytes: a base protocol, and a
broadcast that encodes a message once for many sessions.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.interfaces import ITransport
from twisted.internet.protocol import Protocol

from .session import Session


class MessageProtocol(Protocol):
    """
    A protocol that receives and sends SockJS messages as ``str``.

    Override :meth:`messageReceived`; call :meth:`sendMessage`.
    """

    def dataReceived(self, data: bytes) -> None:
        """
        One SockJS message arrived (UTF-8, lone surrogates encoded as code points); hands it
        to :meth:`messageReceived`.
        """
        self.messageReceived(data.decode("utf-8", "surrogatepass"))

    def messageReceived(self, message: str) -> None:
        """Called once per message from the client."""

    def sendMessage(self, message: str) -> None:
        """Send one message to the client (any ``str``: empty, or with lone surrogates)."""
        if not isinstance(message, str):
            raise TypeError(f"sendMessage() takes str, not {type(message).__name__}")
        if self.transport is None:
            raise RuntimeError("sendMessage() called before connectionMade()")
        self.transport.write(message.encode("utf-8", "surrogatepass"))


def broadcast(transports: Iterable[ITransport], message: str) -> None:
    """
    Send ``message`` to every transport, encoding it once per wire form (SockJS JSON, raw
    websocket text) for all SockJS sessions.

    Transports that are not SockJS sessions (a plain TCP connection in the same chat, say)
    get the UTF-8 bytes written.
    """
    encoded: dict[object, bytes] = {}
    for transport in transports:
        if isinstance(transport, Session):
            encoder = transport.message_encoder
            wire = encoded.get(encoder)
            if wire is None:
                wire = encoded[encoder] = encoder(message)
            transport.send_encoded(wire)
        else:
            transport.write(message.encode("utf-8", "surrogatepass"))
