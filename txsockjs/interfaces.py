"""
Interfaces of txsockjs: what a wrapped protocol can learn about its SockJS connection, and
what a protocol may offer to take binary messages.
"""

from __future__ import annotations

from twisted.internet.interfaces import IConsumer, IPushProducer, ITransport
from zope.interface import Attribute, Interface


class ISockJSTransport(ITransport, IConsumer, IPushProducer):
    """
    The transport a protocol wrapped by txsockjs sees: one SockJS session.

    Besides :class:`~twisted.internet.interfaces.ITransport` (``write`` sends UTF-8 text,
    ``loseConnection`` closes with 3000 ``"Go away!"`` after queued messages are sent),
    :class:`~twisted.internet.interfaces.IConsumer` (producers, with backpressure across
    reconnecting polls) and :class:`~twisted.internet.interfaces.IPushProducer`
    (``pauseProducing`` stops delivering received messages), it offers what sockjs-node's
    connection object offers. The session id is never exposed.
    """

    headers = Attribute(
        "A read-only mapping of the whitelisted request headers (lowercase names) of the "
        "request that opened the session. ``cookie`` only with the ``expose_cookies`` option."
    )
    url = Attribute("The URL of the request that opened the session, as a string.")
    path = Attribute("The path of that URL, without the query, as a string.")
    prefix = Attribute("The path at which the SockJS service is mounted, as a string.")
    transportName = Attribute(
        "The SockJS transport of the session: 'websocket', 'xhr-streaming', 'xhr-polling', "
        "'eventsource', 'htmlfile', 'jsonp-polling' or 'raw-websocket'."
    )
    principal = Attribute(
        "What the ``authenticate`` option's hook returned for the request that opened the "
        "session (``None`` without a hook); :class:`txsockjs.auth.FirstMessageAuth` sets it "
        "to what its check returned for the token."
    )
    state = Attribute("'open', 'closing' (queued messages still to deliver) or 'closed'.")
    readable = Attribute("Whether messages may still arrive from the client.")
    writable = Attribute("Whether ``write`` still sends.")

    def writeBinary(data: bytes) -> None:
        """
        Send ``data`` as one binary websocket message. Only the raw websocket endpoint
        carries binary messages; on a SockJS transport this raises ``ValueError``.
        """

    def close(code: int = 1000, reason: str = "Normal closure") -> None:
        """
        Close the session with a SockJS close frame, after queued messages are sent.

        :param code: 1000, or an application code from 3000 to 4999.
        :param reason: a short text the client sees.
        """

    def end() -> None:
        """Close the session as sockjs-node's ``end()`` does: 1000 ``"Normal closure"``."""

    def abortConnection() -> None:
        """Close the session now, dropping queued messages."""


class IBinaryMessageReceiver(Interface):
    """
    A protocol that takes binary messages from the raw websocket endpoint.

    Binary messages to a protocol without this method close the session with 1003.
    """

    def binaryMessageReceived(data: bytes) -> None:
        """One binary message arrived from a raw websocket client."""
