"""
What a receiving connection (an HTTP response or a websocket) offers a session: the
internal contract between the session core and the transports, not public API.
"""

from __future__ import annotations

from zope.interface import Interface


class IReceiver(Interface):
    """
    A connection a session sends frames to: an HTTP response or a websocket.

    A session has at most one receiver at a time. The receiver tells the session when its
    client goes away (``session.receiver_lost``) and when it is paused by a slow client
    (``session.receiver_paused``).
    """

    def send_frame(frame: bytes) -> bool:
        """
        Send one SockJS frame.

        :return: ``True`` to stay attached for more frames, ``False`` when this receiver
            is done (a poll answered, a stream at its response limit).
        """

    def end() -> None:
        """Finish the response or close the connection; called once, after detaching."""

    def pause_reading(paused: bool) -> None:
        """Stop (``True``) or resume (``False``) reading messages from the client, if the
        receiver reads any (websockets do; HTTP receivers do not)."""


class IRawReceiver(IReceiver):
    """A receiver that carries messages without SockJS framing: the raw websocket."""

    def send_messages(messages: list[bytes]) -> None:
        """
        Send queued messages, each as one websocket message: UTF-8 text, or binary for a
        :class:`~txsockjs._core.framing.BinaryMessage`.
        """
