"""
The websocket transports, on autobahn: SockJS-framed (``/<server>/<session>/websocket``) and
raw (``/websocket``). The only module that imports autobahn.

A websocket is a receiver that stays attached for the whole session; websocket sessions are
never looked up by id. The HTTP checks sockjs-node makes come first (400 without a proper
upgrade, 405 for other methods), then autobahn takes the connection over.
"""

from __future__ import annotations

import json
from typing import Any

from autobahn.twisted.resource import WebSocketResource as _AutobahnResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.interfaces import IAddress, IPushProducer
from twisted.web.server import Request
from zope.interface import implementer

from .._framing import PayloadError, decode_payload
from .._http import SockJSLeaf, error
from .._service import SessionService
from .._session import Session
from ..interfaces import IReceiver

#: Close code and reason when a client sends a websocket message that is not SockJS framing.
BROKEN_FRAMING = (3000, "Broken framing.")


def _sendable_close(code: int, reason: str) -> tuple[int, str]:
    """Autobahn lets a server send only 1000 and 3000-4999."""
    if code == 1000 or 3000 <= code <= 4999:
        return code, reason
    return 1000, reason


@implementer(IReceiver, IPushProducer)
class WebSocketReceiver:
    """A websocket that SockJS frames are sent to, one frame per text message."""

    raw = False

    def __init__(self, protocol: SessionWebSocketProtocol):
        self._protocol = protocol
        self._close: tuple[int, str] = (1000, "Normal closure")
        self.ended = False

    def sendFrame(self, frame: bytes) -> bool:
        if frame[:1] == b"c":
            code, reason = json.loads(frame[1:])
            self._close = _sendable_close(code, reason)
        self._protocol.sendMessage(frame, False)  # type: ignore[no-untyped-call]
        return True

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            code, reason = self._close
            self._protocol.sendClose(code, reason)

    def pauseReading(self, paused: bool) -> None:
        transport: Any = self._protocol.transport
        if transport is not None:
            if paused:
                transport.pauseProducing()
            else:
                transport.resumeProducing()

    # IPushProducer toward the TCP connection: a slow client pauses the session.
    def pauseProducing(self) -> None:
        self._protocol.session.receiverPaused(self, True)

    def resumeProducing(self) -> None:
        self._protocol.session.receiverPaused(self, False)

    def stopProducing(self) -> None:
        """``onClose`` reports the end of the connection."""


class RawWebSocketReceiver(WebSocketReceiver):
    """A plain websocket: each message is one websocket text message, no SockJS framing."""

    raw = True

    def sendFrame(self, frame: bytes) -> bool:
        kind = frame[:1]
        if kind == b"a":
            send: Any = self._protocol.sendMessage
            for message in json.loads(frame[1:]):
                send(message.encode("utf-8", "surrogatepass"), False)
        elif kind == b"c":
            code, reason = json.loads(frame[1:])
            self._close = _sendable_close(code, reason)
        elif kind == b"h":
            self._protocol.sendPing()
        return True


class SessionWebSocketProtocol(WebSocketServerProtocol):
    """The autobahn protocol of one websocket session."""

    session: Session
    receiver: WebSocketReceiver

    def __init__(self, service: SessionService, session: Session, raw: bool):
        super().__init__()
        self._service = service
        self.session = session
        self.receiver = (RawWebSocketReceiver if raw else WebSocketReceiver)(self)
        self._opened = False

    def onOpen(self) -> None:
        self._opened = True
        transport: Any = self.transport
        if getattr(transport, "producer", None) is not None:
            # The HTTP channel the connection was taken over from is still registered.
            transport.unregisterProducer()
        transport.registerProducer(self.receiver, True)
        self.session.attach(self.receiver)
        self._service.start(self.session)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.receiver.raw:
            if isBinary:
                self.session.close(1003, "Binary messages are not supported.")
            else:
                self.session.receive([payload.decode("utf-8")])
            return
        if not payload:
            return
        try:
            if payload[:1] == b"[":
                messages = decode_payload(payload)
            else:
                message = json.loads(payload)
                if not isinstance(message, str):
                    raise ValueError(message)
                messages = [message]
        except (PayloadError, ValueError):
            self._service.log("debug", "closing a websocket that sent broken framing")
            self.receiver.ended = True
            self.sendClose(*BROKEN_FRAMING)
            self.session.receiverLost(self.receiver)
            return
        self.session.receive(messages)

    def _closeConnection(self, abort: bool = False) -> None:
        # After a clean closing handshake autobahn aborts the TCP connection (an RST, which
        # clients report as "connection reset"); close it gracefully instead.
        super()._closeConnection(abort and not self.wasClean)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        session = getattr(self, "session", None)
        if session is None:
            return
        if not self._opened:
            self._service.forget(session)
            return
        transport: Any = self.transport
        if transport is not None and getattr(transport, "producer", None) is self.receiver:
            transport.unregisterProducer()
        if not self.receiver.ended:
            self.receiver.ended = True
            session.receiverLost(self.receiver)


class _OneProtocol:
    """Hands autobahn's resource the protocol already built for this request."""

    def __init__(self, protocol: SessionWebSocketProtocol):
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress) -> SessionWebSocketProtocol:
        return self._protocol


class WebSocketResource(SockJSLeaf):
    """
    ``/<server>/<session>/websocket`` (SockJS framing) or ``/websocket`` (raw).
    """

    methods = (b"GET",)

    def __init__(self, service: SessionService, raw: bool):
        super().__init__(service.options)
        self.service = service
        self.raw = raw
        options = service.options
        self._factory = WebSocketServerFactory()  # type: ignore[no-untyped-call]
        self._factory.setProtocolOptions(  # type: ignore[no-untyped-call]
            maxMessagePayloadSize=options.max_message_bytes,
            maxFramePayloadSize=options.max_message_bytes,
            openHandshakeTimeout=10,
            closeHandshakeTimeout=2,
        )

    def handle(self, request: Request) -> bytes | int:
        upgrade = (request.getHeader(b"upgrade") or b"").lower()
        if upgrade != b"websocket":
            return error(request, 400, 'Can "Upgrade" only to "WebSocket".')
        connection = (request.getHeader(b"connection") or b"").lower()
        if b"upgrade" not in [token.strip() for token in connection.split(b",")]:
            return error(request, 400, '"Connection" must be "Upgrade".')
        service = self.service
        if service.full():
            service.log("info", "refusing a new session: max_sessions reached")
            return error(request, 503, "Too many sessions.")
        prepath = request.prepath or []
        prefix = "/" + "/".join(
            p.decode("utf-8", "replace") for p in prepath[: -1 if self.raw else -3]
        )
        name = "raw-websocket" if self.raw else "websocket"
        session = service.open(request, prefix, name, None)
        protocol = SessionWebSocketProtocol(service, session, self.raw)
        protocol.factory = self._factory
        hijacker: Any = _AutobahnResource(_OneProtocol(protocol))  # type: ignore[no-untyped-call]
        result: bytes | int = hijacker.render(request)
        return result
