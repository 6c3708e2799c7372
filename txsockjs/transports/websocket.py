"""
The websocket transports, on autobahn: SockJS-framed (``/<server>/<session>/websocket``) and
raw (``/websocket``): the SockJS side of them. What touches autobahn's internals is in
:mod:`txsockjs._websocket.autobahn_adapter`, the frame codec in :mod:`txsockjs._websocket.frames`.

A websocket is a receiver that stays attached for the whole session; websocket sessions are
never looked up by id. The HTTP checks sockjs-node makes come first (400 without a proper
upgrade, 405 for other methods), then autobahn takes the connection over.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, cast

from autobahn.twisted.resource import WebSocketResource as _AutobahnResource
from autobahn.twisted.websocket import WebSocketServerFactory
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IPushProducer
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from .._core.framing import (
    HEARTBEAT,
    PLAIN_BYTES,
    BinaryMessage,
    PayloadError,
    decode_websocket_message,
)
from .._core.options import SockJSOptions
from .._core.receiver import IRawReceiver, IReceiver
from .._core.service import SessionService
from .._core.session import Session
from .._policy.admission import (
    Verdict,
    admit,
    answer_late,
    refuse,
    refuse_late,
    refuse_origin,
    when_decided,
)
from .._tcp import no_delay
from .._web.leaf import SockJSLeaf
from .._web.prefix import mount_prefix
from .._web.responses import error, not_found
from .._websocket.autobahn_adapter import STATE_OPEN, FastServerProtocol
from .http import ids_within

#: Close code and reason when a client sends a websocket message that is not SockJS framing.
BROKEN_FRAMING = (3000, "Broken framing.")


def ping_every(options: SockJSOptions) -> int:
    """
    Every how many heartbeats a SockJS websocket is pinged: ``websocket_ping_interval``
    rounded up to a whole number of ``heartbeat_delay``, at least 1.
    """
    ratio = options.websocket_ping_interval / options.heartbeat_delay
    return max(1, math.ceil(round(ratio, 9)))


@implementer(IReceiver, IPushProducer)
class WebSocketReceiver:
    """A websocket that SockJS frames are sent to, one frame per text message."""

    raw = False

    def __init__(self, protocol: SessionWebSocketProtocol):
        self._protocol = protocol
        self._close: tuple[int, str] = (1000, "Normal closure")
        self.ended = False

    def send_frame(self, frame: bytes) -> bool:
        if frame == HEARTBEAT:
            self._protocol.heartbeat(frame)
            return True
        if frame[:1] == b"c":
            code, reason = json.loads(frame[1:])
            self._close = (code, reason)
        self._protocol.sendText(frame)
        return True

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            code, reason = self._close
            if self._protocol.accepting_frames:
                self._protocol.send_close_code(code, reason)

    def pause_reading(self, paused: bool) -> None:
        transport: Any = self._protocol.transport
        if transport is not None:
            if paused:
                transport.pauseProducing()
            else:
                transport.resumeProducing()

    # IPushProducer toward the TCP connection: a slow client pauses the session.
    def pauseProducing(self) -> None:
        self._protocol.connection_full()
        self._protocol.session.receiver_paused(self, True)

    def resumeProducing(self) -> None:
        self._protocol.session.receiver_paused(self, False)

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

    def send_messages(self, messages: list[bytes]) -> None:
        protocol = self._protocol
        send = protocol.sendText
        for message in messages:
            if type(message) is BinaryMessage:
                protocol.sendBinary(bytes(message))
            else:
                send(message)

    def send_frame(self, frame: bytes) -> bool:
        kind = frame[:1]
        if kind == b"c":
            code, reason = json.loads(frame[1:])
            self._close = (code, reason)
        elif frame == HEARTBEAT:
            self._protocol.heartbeat(None)  # raw websockets have no heartbeat frame: a ping
        return True


class SessionWebSocketProtocol(FastServerProtocol):
    """The autobahn protocol of one websocket session."""

    session: Session
    receiver: WebSocketReceiver

    def __init__(
        self, service: SessionService, session: Session, raw: bool, phase: int = 0
    ) -> None:
        super().__init__()
        self._service = service
        self.session = session
        self.receiver = (RawWebSocketReceiver if raw else WebSocketReceiver)(self)
        self._opened = False
        options = service.options
        self.maxFastPayload = options.max_message_bytes
        self._liveness = options.websocket_liveness
        #: Ping with every this many heartbeats: raw websockets with each (the ping is their
        #: heartbeat), SockJS ones every ``websocket_ping_interval`` in whole heartbeats.
        self._ping_every = 1 if raw else ping_every(options)
        #: Heartbeats left until the next ping. Sessions opened one after the other start at
        #: successive phases, so that the pings (and the pongs that come back) of sessions
        #: opened together spread over the heartbeats instead of coming all at once.
        self._beats_to_ping = 1 + phase % self._ping_every
        #: A ping was sent and its pong has not come back.
        self._pong_due = False
        #: The connection was full (a slow link, not a dead one) since the last ping.
        self._was_full = False

    def heartbeat(self, text: bytes | None) -> None:
        """
        A heartbeat tick: send the SockJS heartbeat frame (if any), and a ping when one is
        due. A client that has not answered the previous ping although the connection had
        room since then is gone: the connection is dropped.
        """
        if self.state != STATE_OPEN:
            return
        if self._liveness:
            beats = self._beats_to_ping - 1
            if beats <= 0:
                self._beats_to_ping = self._ping_every
                if self._pong_due and not self._was_full:
                    # The reactor runs its timers before it reads: after a stall the pong
                    # may be waiting unread. Decide once this turn's reads are done.
                    if text is not None:
                        self.send_heartbeat()
                    self._service.clock.callLater(0, self._ping_or_drop)
                    return
                self._ping(text)
                return
            self._beats_to_ping = beats
        if text is not None:
            self.send_heartbeat()

    def _ping(self, text: bytes | None) -> None:
        """Send ``text`` (if any) and a liveness ping, whose pong is due by the next one."""
        self._was_full = False
        self._pong_due = True
        self.send_ping_after(text)

    def _ping_or_drop(self) -> None:
        """After the reads of a turn: drop a client whose pong is still missing, or ping."""
        if self.state != STATE_OPEN:
            return
        if self._pong_due and not self._was_full:
            self._service.liveness_timeout(self.session)
            self.dropConnection(abort=True)
        else:
            self._ping(None)

    def connection_full(self) -> None:
        """The connection's buffer is full: the ping may be queued behind data."""
        self._was_full = True

    def onPong(self, payload: bytes) -> None:
        self._pong_due = False

    def onOpen(self) -> None:
        self._opened = True
        transport: Any = self.transport
        if getattr(transport, "producer", None) is not None:
            # The HTTP channel the connection was taken over from is still registered.
            transport.unregisterProducer()
        transport.registerProducer(self.receiver, True)
        no_delay(transport)
        self.drop_handshake_leftovers()
        self.session.attach(self.receiver)
        self._service.start(self.session)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """A whole message that autobahn assembled (fragmented, or off the fast path)."""
        if isBinary:
            if self.receiver.raw:
                self.session.receive_binary(payload)
            else:
                self._broken_framing()
            return
        self.text_messages_received([payload])  # autobahn checked that it is UTF-8

    def text_messages_received(self, payloads: list[bytes]) -> None:
        """
        Text messages in order, as their UTF-8 payloads: those of one read the fast path
        took off the buffer, or one that autobahn assembled.
        """
        session = self.session
        if self.receiver.raw:
            session.receive(payloads)
            return
        # One delivery for the read: the session stops delivering by itself if a protocol
        # closes it (or pauses it) midway.
        messages: list[str | bytes] = []
        for payload in payloads:
            if not payload:
                continue  # empty websocket messages carry no SockJS message
            # plain_payload(), inlined: one message of plain text, its UTF-8 as it came.
            if (
                payload.translate(None, PLAIN_BYTES) == b'""'
                and payload[:2] == b'["'
                and payload[-2:] == b'"]'
            ):
                messages.append(payload[2:-2])
                continue
            try:
                messages += decode_websocket_message(payload.decode("utf-8"))
            except PayloadError:
                if messages:
                    session.receive(messages)
                if self.state == STATE_OPEN:  # unless delivering them closed it
                    self._broken_framing()
                return
        if messages:
            session.receive(messages)

    def _broken_framing(self) -> None:
        self._service.log("debug", "closing a websocket that sent broken framing")
        self.receiver.ended = True
        self.sendClose(*BROKEN_FRAMING)
        self.session.receiver_lost(self.receiver)

    def dataReceived(self, data: bytes) -> None:
        # Everything the protocols write in answer to this read leaves at its end, batched.
        service = self._service
        service.begin_batch()
        try:
            super().dataReceived(data)
        finally:
            service.end_batch()

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
            session.receiver_lost(self.receiver, self.closed_cleanly_by_peer(wasClean))


#: permessage-deflate as txsockjs accepts it: the server compresses with a 4 KiB window and
#: zlib's memory level 4 (about 20 KiB a session instead of zlib's default 256 KiB), and asks
#: clients that allow it to compress with a 4 KiB window too (``client_max_window_bits``).
DEFLATE_WINDOW_BITS = 12
DEFLATE_MEM_LEVEL = 4


def accept_deflate(offers: list[Any]) -> PerMessageDeflateOfferAccept | None:
    """Accept the first permessage-deflate offer (RFC 7692), with a small window."""
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(  # type: ignore[no-untyped-call]
                offer,
                request_max_window_bits=DEFLATE_WINDOW_BITS if offer.accept_max_window_bits else 0,
                window_bits=DEFLATE_WINDOW_BITS,
                mem_level=DEFLATE_MEM_LEVEL,
            )
    return None


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
        #: Counts the websockets opened here: each starts its pings at the next phase.
        self._phases = itertools.count()
        options = service.options
        self._factory = WebSocketServerFactory()  # type: ignore[no-untyped-call]
        self._factory.setProtocolOptions(  # type: ignore[no-untyped-call]
            maxMessagePayloadSize=options.max_message_bytes,
            maxFramePayloadSize=options.max_message_bytes,
            openHandshakeTimeout=10,
            failByDrop=False,
            closeHandshakeTimeout=2,
        )
        if options.websocket_compression:
            self._factory.setProtocolOptions(  # type: ignore[no-untyped-call]
                perMessageCompressionAccept=accept_deflate
            )

    def head(self, request: Request) -> bytes:
        """``HEAD`` cannot upgrade: the answer of a ``GET`` without upgrade, no session."""
        return error(request, 400, 'Can "Upgrade" only to "WebSocket".')

    def handle(self, request: Request) -> bytes | int:
        if not self.raw and not ids_within(request, self.options.max_session_id_length):
            return not_found(request)
        upgrade = (request.getHeader(b"upgrade") or b"").lower()
        if upgrade != b"websocket":
            return error(request, 400, 'Can "Upgrade" only to "WebSocket".')
        connection = (request.getHeader(b"connection") or b"").lower()
        if b"upgrade" not in [token.strip() for token in connection.split(b",")]:
            return error(request, 400, '"Connection" must be "Upgrade".')
        foreign = refuse_origin(request, self.service, websocket=True)
        if foreign:
            return foreign
        service = self.service
        refused = service.refuse_new(request)
        if refused is not None:
            return refused
        prefix = mount_prefix(request, 1 if self.raw else 3)
        name = "raw-websocket" if self.raw else "websocket"
        # The authenticate hook (if any) decides before autobahn takes the connection over.
        verdict = admit(request, service, prefix, name)
        if isinstance(verdict, Deferred):
            when_decided(request, verdict, lambda late: self._admitted(request, prefix, late))
            return NOT_DONE_YET
        if not verdict.admitted:
            return refuse(request, service, verdict)
        return self._upgrade(request, prefix, verdict.principal)

    def _admitted(self, request: Request, prefix: str, verdict: Verdict) -> None:
        """The hook decided after :meth:`handle` returned: refuse, or upgrade now."""
        service = self.service
        if not verdict.admitted:
            answer_late(request, refuse(request, service, verdict))
            return
        refused = refuse_late(request, service)
        if refused:
            answer_late(request, refused)
            return
        result = self._upgrade(request, prefix, verdict.principal)
        if result is not NOT_DONE_YET:
            answer_late(request, cast(bytes, result))

    def _upgrade(self, request: Request, prefix: str, principal: object) -> bytes | int:
        """Open the session and hand the connection over to autobahn."""
        service = self.service
        name = "raw-websocket" if self.raw else "websocket"
        session = service.open(request, prefix, name, None)
        session.principal = principal
        protocol = SessionWebSocketProtocol(service, session, self.raw, next(self._phases))
        protocol.factory = self._factory
        hijacker: Any = _AutobahnResource(_OneProtocol(protocol))  # type: ignore[no-untyped-call]
        result: bytes | int = hijacker.render(request)
        # The HTTP channel no longer owns the connection: stop its idle timer, which would
        # otherwise keep the channel and this request alive, and later fire on nothing.
        set_timeout = getattr(request.channel, "setTimeout", None)
        if result is NOT_DONE_YET and set_timeout is not None:
            set_timeout(None)
        return result
