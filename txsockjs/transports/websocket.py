"""
The websocket transports, on autobahn: SockJS-framed (``/<server>/<session>/websocket``) and
raw (``/websocket``). The only module that imports autobahn.

A websocket is a receiver that stays attached for the whole session; websocket sessions are
never looked up by id. The HTTP checks sockjs-node makes come first (400 without a proper
upgrade, 405 for other methods), then autobahn takes the connection over.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from autobahn.twisted.resource import WebSocketResource as _AutobahnResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket import xormasker
from twisted.internet.interfaces import IAddress, IPushProducer
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from .._framing import BinaryMessage, PayloadError, decode_websocket_message
from .._http import SockJSLeaf, error, mount_prefix
from .._service import SessionService
from .._session import Session
from .._tcp import no_delay, write_now
from ..interfaces import IRawReceiver, IReceiver

_STATE_OPEN = WebSocketServerProtocol.STATE_OPEN
_SEND_GROUND = WebSocketServerProtocol.SEND_STATE_GROUND
#: Above this many bytes autobahn's (C accelerated, where built) masker beats Python's
#: big-integer XOR, which wins for the small frames SockJS mostly carries.
_LARGE_FRAME = 1536
_HEADER16 = struct.Struct("!BBH")
_HEADER64 = struct.Struct("!BBQ")
#: What autobahn keeps of the opening handshake and never reads again.
_HANDSHAKE_LEFTOVERS = (
    "http_request_data",
    "http_response_data",
    "http_status_line",
    "http_request_uri",
    "http_request_path",
    "http_request_params",
    "http_request_host",
)

#: Close code and reason when a client sends a websocket message that is not SockJS framing.
BROKEN_FRAMING = (3000, "Broken framing.")


#: Close codes an endpoint may send (RFC 6455 7.4, IANA registry), besides 3000-4999.
_SENDABLE_CODES = frozenset(WebSocketServerProtocol.CLOSE_STATUS_CODES_ALLOWED)
#: A close frame's reason fits in 123 bytes of UTF-8 (a control frame carries 125).
_MAX_REASON = 123


def send_close(protocol: WebSocketServerProtocol, code: int, reason: str) -> None:
    """
    Start the closing handshake with ``code``: the application's or the server's own
    (1001, 1003, 1007, 1008, 1011 ...). Autobahn's ``sendClose`` refuses every code but 1000
    and 3000-4999, so the frame goes through ``sendCloseFrame``, which takes any; a code
    that must never be sent (1005, 1006, 1015, out of range) becomes 1000.
    """
    if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
        code = 1000
    encoded = reason.encode("utf-8")
    if len(encoded) > _MAX_REASON:
        encoded = encoded[:_MAX_REASON].decode("utf-8", "ignore").encode("utf-8")
    protocol.sendCloseFrame(code=code, reasonUtf8=encoded, isReply=False)


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
            self._close = (code, reason)
        self._protocol.sendText(frame)
        return True

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            code, reason = self._close
            if self._protocol.state == _STATE_OPEN:
                send_close(self._protocol, code, reason)

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


@implementer(IRawReceiver)
class RawWebSocketReceiver(WebSocketReceiver):
    """
    A plain websocket: each message is one websocket message (text, or binary for a
    :class:`BinaryMessage`), no SockJS framing. Of the session's own frames only the close
    (its code and reason) and the heartbeat (a ping) are sent.
    """

    raw = True

    def sendMessages(self, messages: list[bytes]) -> None:
        protocol = self._protocol
        send = protocol.sendText
        for message in messages:
            if type(message) is BinaryMessage:
                if protocol.state == _STATE_OPEN:
                    protocol.sendMessage(bytes(message), True)  # type: ignore[no-untyped-call]
            else:
                send(message)

    def sendFrame(self, frame: bytes) -> bool:
        kind = frame[:1]
        if kind == b"c":
            code, reason = json.loads(frame[1:])
            self._close = (code, reason)
        elif kind == b"h" and self._protocol.state == _STATE_OPEN:
            self._protocol.sendPing()  # raw websockets have no heartbeat frame: a ping
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
        self._max_message = service.options.max_message_bytes

    def onOpen(self) -> None:
        self._opened = True
        transport: Any = self.transport
        if getattr(transport, "producer", None) is not None:
            # The HTTP channel the connection was taken over from is still registered.
            transport.unregisterProducer()
        transport.registerProducer(self.receiver, True)
        no_delay(transport)
        # The handshake is over: drop what autobahn kept of it (about 1 kB a session).
        for name in _HANDSHAKE_LEFTOVERS:
            if hasattr(self, name):
                setattr(self, name, None)
        self.session.attach(self.receiver)
        self._service.start(self.session)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """A whole message that autobahn assembled (fragmented, or off the fast path)."""
        if isBinary:
            if self.receiver.raw:
                self.session.receiveBinary(payload)
            else:
                self._broken_framing()
            return
        self._text_received(payload.decode("utf-8"))

    def _text_received(self, text: str) -> None:
        if self.receiver.raw:
            self.session.receive([text])
            return
        if not text:
            return  # empty websocket messages carry no SockJS message
        try:
            messages = decode_websocket_message(text)
        except PayloadError:
            self._broken_framing()
            return
        self.session.receive(messages)

    def _broken_framing(self) -> None:
        self._service.log("debug", "closing a websocket that sent broken framing")
        self.receiver.ended = True
        self.sendClose(*BROKEN_FRAMING)
        self.session.receiverLost(self.receiver)

    def processData(self) -> bool:
        """
        Take whole, unfragmented, masked text frames straight off the buffer; hand anything
        else (control frames, fragments, binary, partial or invalid frames) to autobahn.

        Autobahn's frame machinery costs several objects and callbacks per message; a
        SockJS connection is almost only small text frames, parsed here in one pass.
        """
        if (
            self.current_frame is None
            and not self.inside_message
            and self.state == _STATE_OPEN
            and self._perMessageCompress is None
        ):
            data = self.data
            end = len(data)
            position = 0
            limit = self._max_message
            while position + 6 <= end and self.state == _STATE_OPEN:
                if data[position] != 0x81:
                    break
                length = data[position + 1] ^ 0x80
                start = position + 6
                if length >= 126:
                    if length != 126 or position + 8 > end:
                        break
                    length = (data[position + 2] << 8) | data[position + 3]
                    if length < 126:
                        break  # not the minimal length encoding: autobahn fails with 1002
                    start = position + 8
                elif length < 0:
                    break  # not masked: autobahn fails the connection
                if start + length > end or length > limit:
                    break
                mask = data[start - 4 : start]
                payload = data[start : start + length]
                if length > _LARGE_FRAME:
                    payload = xormasker.create_xor_masker(mask, length).process(payload)
                elif length:
                    key = int.from_bytes((mask * ((length >> 2) + 1))[:length], "big")
                    payload = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:
                    break  # autobahn closes with 1007
                position = start + length
                self._text_received(text)
            if position:
                self.data = data[position:]
                if not self.data:
                    return False
        result: bool = super().processData()
        return result

    def sendText(self, payload: bytes) -> None:
        """Send one text message, framed here when nothing else is being sent."""
        if self.state != _STATE_OPEN:
            return  # closing: nothing more goes out
        if self.send_state == _SEND_GROUND and self._perMessageCompress is None:
            length = len(payload)
            if length < 126:
                header = bytes((0x81, length))
            elif length < 65536:
                header = _HEADER16.pack(0x81, 126, length)
            else:
                header = _HEADER64.pack(0x81, 127, length)
            write_now(self.transport, header + payload)
        else:
            self.sendMessage(payload, False)  # type: ignore[no-untyped-call]

    def dataReceived(self, data: bytes) -> None:
        # Everything the protocols write in answer to this read leaves at its end, batched.
        service = self._service
        service.begin_batch()
        try:
            # Straight to the protocol machinery: autobahn's Twisted adapter formats a debug
            # line (with terminal colours) for every read even when nothing logs it.
            self._dataReceived(data)
        finally:
            service.end_batch()

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
            # A closing handshake the client started and finished is a clean close.
            clean = bool(wasClean) and not self.closedByMe
            session.receiverLost(self.receiver, clean)


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
            failByDrop=False,
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
        prefix = mount_prefix(request, 1 if self.raw else 3)
        name = "raw-websocket" if self.raw else "websocket"
        session = service.open(request, prefix, name, None)
        protocol = SessionWebSocketProtocol(service, session, self.raw)
        protocol.factory = self._factory
        hijacker: Any = _AutobahnResource(_OneProtocol(protocol))  # type: ignore[no-untyped-call]
        result: bytes | int = hijacker.render(request)
        # The HTTP channel no longer owns the connection: stop its idle timer, which would
        # otherwise keep the channel and this request alive, and later fire on nothing.
        set_timeout = getattr(request.channel, "setTimeout", None)
        if result is NOT_DONE_YET and set_timeout is not None:
            set_timeout(None)
        return result
