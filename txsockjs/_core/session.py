"""
A SockJS session: the state machine, and the transport the wrapped protocol sees.

The session is the protocol's transport (``ITransport``, ``IConsumer``, ``IPushProducer``,
``ISockJSTransport``). Writes are decoded as UTF-8, encoded once into their wire form (a JSON
string literal, or UTF-8 text for the raw websocket) and queued; the service flushes every
dirty session once per reactor turn, so everything written in one turn leaves as one
``a[...]`` frame. At most one receiver (an HTTP response or a websocket) is attached at a time.

A SockJS message is a JavaScript string: any sequence of UTF-16 code units, the empty one
included. The protocol sees it as UTF-8 in which a lone surrogate is encoded like any other
code point (three bytes, as Python's ``"surrogatepass"`` error handler does), and writes it
back the same way.

Memory is bounded without the application's help: while the receiver cannot take more
(its connection's buffer is full) messages stay in the session's queue; above
``high_watermark`` queued bytes the session stops reading from the client (and pauses the
application's producer) until the queue is below ``low_watermark``; above
``max_queued_bytes`` the session is closed with :data:`SEND_BUFFER_FULL` and its queue dropped.
"""

from __future__ import annotations

import codecs
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IProducer,
    IProtocol,
    IPullProducer,
    IPushProducer,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..interfaces import ISockJSTransport
from . import events as _events
from . import stats as _stats
from .framing import (
    HEARTBEAT,
    OPEN,
    VERBATIM_BYTES,
    BinaryMessage,
    close_frame,
    encode_message,
    encode_raw_text,
    message_frame,
)
from .info import ConnectionInfo
from .receiver import IRawReceiver, IReceiver

if TYPE_CHECKING:
    from .service import SessionService

_log = Logger()

OPEN_STATE = "open"
CLOSING_STATE = "closing"
CLOSED_STATE = "closed"

#: The close frame a second receiver gets while one is attached.
ANOTHER_CONNECTION = close_frame(2010, "Another connection still open")
#: The close frame of a session whose receiving connection was dropped by the client.
INTERRUPTED = close_frame(1002, "Connection interrupted")
#: The close frame of a session the application refused (``buildProtocol`` returned None).
REFUSED = close_frame(3003, "Connection refused")
#: Close code and reason when the application writes bytes that are not UTF-8.
INVALID_UTF8 = (1007, "Invalid UTF-8 written by the application")
#: Close code and reason when the application raised while handling a message.
SERVER_ERROR = (1011, "Server error")
#: Close code and reason when more than ``max_queued_bytes`` wait for a client that does not
#: read: the queue is dropped.
SEND_BUFFER_FULL = (1008, "Send buffer full")
#: Close code and reason when a raw websocket client sends a binary message to a protocol
#: without ``binaryMessageReceived``.
BINARY_UNSUPPORTED = (1003, "Binary messages are not supported.")

_utf8_decode = codecs.utf_8_decode


@implementer(ISockJSTransport)
class Session:
    """
    One SockJS session, seen by the wrapped protocol as its transport.

    Made by :class:`~txsockjs._core.service.SessionService`; applications never build one.
    """

    __slots__ = (
        "__weakref__",
        "_app_paused",
        "_close_frame",
        "_dirty",
        "_encode",
        "_inbox",
        "_inbox_bytes",
        "_inbox_drained",
        "_info",
        "_key",
        "_lost_reason",
        "_opened",
        "_over_watermark",
        "_pending_utf8",
        "_producer",
        "_producer_paused",
        "_protocol",
        "_queue",
        "_queued_bytes",
        "_raw",
        "_receiver",
        "_receiver_paused",
        "_service",
        "_state",
        "_stats",
        "_streaming",
        "disconnecting",
        "principal",
    )

    def __init__(self, service: SessionService, info: ConnectionInfo, key: bytes | None):
        self.disconnecting = False
        #: What the ``authenticate`` hook returned for the opening request (``None``
        #: without a hook); :class:`txsockjs.auth.FirstMessageAuth` replaces it.
        self.principal: Any = None
        self._service = service
        self._info = info
        self._key = key
        #: The counters of this session's transport.
        self._stats = service.stats_for(info.transport_name)
        self._raw = info.transport_name == "raw-websocket"
        #: A message's wire form: a JSON string literal, or UTF-8 for the raw websocket.
        self._encode: Callable[[str], bytes] = encode_raw_text if self._raw else encode_message
        self._protocol: IProtocol | None = None
        self._queue: list[bytes] = []
        self._queued_bytes = 0
        self._receiver: IReceiver | None = None
        self._receiver_paused = False
        self._state = OPEN_STATE
        self._close_frame: bytes | None = None
        self._lost_reason: Failure | None = None
        self._pending_utf8 = b""
        self._producer: IProducer | None = None
        self._streaming = False
        self._producer_paused = False
        self._over_watermark = False
        self._app_paused = False
        self._inbox: deque[str | bytes] = deque()
        self._inbox_bytes = 0
        self._inbox_drained: list[Deferred[None]] = []
        self._dirty = False
        self._opened = False

    # -- life cycle, driven by the service and the receivers --------------------------------

    def start(self, protocol: IProtocol | None) -> None:
        """Connect the protocol built for this session (``None``: the factory refused)."""
        if protocol is None:
            self._state = CLOSED_STATE
            self._close_frame = REFUSED
            self._flush()
            return
        self._protocol = protocol
        try:
            protocol.makeConnection(self)
        except Exception:
            self._service.protocol_error(self, "connectionMade")
            self.close_with_code(*SERVER_ERROR)

    def attach(self, receiver: IReceiver) -> None:
        """
        A receiving connection arrives: send it ``o`` if the session is new, the close frame
        if it is closed, ``c[2010,...]`` if another receiver is attached, otherwise queued
        messages or, later, heartbeats.
        """
        if self._receiver is not None:
            receiver.send_frame(ANOTHER_CONNECTION)
            receiver.end()
            return
        if self._state == CLOSED_STATE and self._close_frame is not None:
            receiver.send_frame(self._close_frame)
            receiver.end()
            self._service.expire_later(self)
            return
        self._receiver = receiver
        self._service.expiry.cancel(self)
        if self._reading_stopped():
            receiver.pause_reading(True)
        if not self._opened:
            self._opened = True
            self._send(OPEN)
        if self._receiver is receiver:
            self._service.heartbeats.schedule(self, self._service.options.heartbeat_delay)
            self._flush()
        self._update_flow()

    def receiver_lost(self, receiver: IReceiver, clean: bool = False) -> None:
        """
        The client dropped the receiving connection: the session is interrupted, or, after
        a clean websocket closing handshake the client started (``clean``), closed.
        """
        if self._receiver is not receiver:
            return
        self._receiver = None
        self._receiver_paused = False
        self._service.heartbeats.cancel(self)
        if self._state != CLOSED_STATE:
            self._drop_queue()
            self._close_frame = INTERRUPTED
            self._state = CLOSED_STATE
            if clean:
                self._lose(
                    Failure(ConnectionDone("The client closed the connection.")),
                    _stats.CLIENT_CLOSED,
                )
            else:
                self._lose(
                    Failure(ConnectionLost("The client dropped the connection.")),
                    _stats.INTERRUPTED,
                )
        self._service.expire_later(self)

    def receiver_paused(self, receiver: IReceiver, paused: bool) -> None:
        """
        The receiver's connection has a full buffer (``True``) or is ready again
        (``False``): messages wait in the queue meanwhile.
        """
        if self._receiver is receiver and self._receiver_paused != paused:
            self._receiver_paused = paused
            if paused:
                self._update_flow()
            else:
                self._flush()

    def heartbeat(self) -> None:
        """
        Called by the service's heartbeat wheel, every ``heartbeat_delay`` from the attach
        of a receiver until it goes (which cancels it).
        """
        if self._receiver is not None and not self._receiver_paused:
            # A full connection is not an idle one: it gets no heartbeat.
            self._stats.heartbeats += 1
            self._send(HEARTBEAT)

    def expire(self) -> None:
        """Called by the service's timer wheel when no receiver came back in time."""
        if self._receiver is not None:
            return
        self._service.forget(self)
        if self._state != CLOSED_STATE:
            self._state = CLOSED_STATE
            self._drop_queue()
            self._lose(Failure(ConnectionLost("The session timed out.")), _stats.TIMEOUT)

    def shutdown(self) -> None:
        """The service stops: close the session and end its receiver."""
        if self._state != CLOSED_STATE:
            self._begin_close(close_frame(1001, "Server shutting down"))
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            receiver.end()
        self._service.heartbeats.cancel(self)
        self._service.expiry.cancel(self)
        self._service.forget(self)
        if self._state != CLOSED_STATE:
            self._state = CLOSED_STATE
            self._lose(Failure(ConnectionLost("The server shut down.")), _stats.SHUTDOWN)

    # -- messages from the client -------------------------------------------------------------

    def receive(self, messages: Sequence[str | bytes]) -> Deferred[None] | None:
        """
        Deliver messages from the client, each as one ``dataReceived`` (a
        :class:`BinaryMessage` as one ``binaryMessageReceived``). A message is text, or
        ``bytes`` already its UTF-8 (a websocket's, taken off the frame as it is).

        :return: ``None`` when delivered, or a Deferred that fires once they have all been
            delivered: the protocol paused reading, or the client does not read what it is
            sent (the queue is over ``high_watermark``).
        """
        if self._state != OPEN_STATE or self._protocol is None:
            return None
        # _reading_stopped(), inlined: this runs for every message.
        if self._app_paused or self._over_watermark:
            return self._hold(messages)
        for index, message in enumerate(messages):
            self._deliver(message)
            if (self._app_paused or self._over_watermark) and index + 1 < len(messages):
                return self._hold(messages[index + 1 :])
        return None

    def receive_binary(self, payload: bytes) -> None:
        """A binary message arrived (raw websocket only)."""
        if self._protocol is not None and not hasattr(self._protocol, "binaryMessageReceived"):
            self.close_with_code(*BINARY_UNSUPPORTED)
            return
        self.receive([BinaryMessage(payload)])

    def inbox_full(self) -> bool:
        """Whether the messages held for delivery already exceed ``max_queued_bytes``."""
        return self._inbox_bytes > self._service.options.max_queued_bytes

    def _hold(self, messages: Sequence[str | bytes]) -> Deferred[None]:
        self._inbox.extend(messages)
        self._inbox_bytes += sum(len(message) for message in messages)
        waiter: Deferred[None] = Deferred()
        self._inbox_drained.append(waiter)
        return waiter

    def _deliver(self, message: str | bytes) -> None:
        protocol = self._protocol
        if self._state != OPEN_STATE or protocol is None:
            return
        stats = self._stats
        stats.messages_in += 1
        try:
            if type(message) is bytes:  # a websocket's message, as its UTF-8
                stats.bytes_in += len(message)
                protocol.dataReceived(message)
            elif type(message) is str:
                data = message.encode("utf-8", "surrogatepass")
                stats.bytes_in += len(data)
                protocol.dataReceived(data)
            else:
                stats.bytes_in += len(message)
                binary = cast(BinaryMessage, message)
                protocol.binaryMessageReceived(bytes(binary))  # type: ignore[attr-defined]
        except Exception:
            self._service.protocol_error(self, "dataReceived")
            self.close_with_code(*SERVER_ERROR)

    def _reading_stopped(self) -> bool:
        """Whether client messages wait: paused by the protocol, or by backpressure."""
        return self._app_paused or self._over_watermark

    def _set_reading(self, stopped: bool) -> None:
        """Pause or resume reading from the client; on resume deliver what waited."""
        receiver = self._receiver
        if receiver is not None:
            receiver.pause_reading(stopped)
        if stopped:
            return
        inbox = self._inbox
        while inbox and not self._reading_stopped():
            message = inbox.popleft()
            self._inbox_bytes -= len(message)
            self._deliver(message)
        if not inbox:
            self._inbox_bytes = 0
            waiters, self._inbox_drained = self._inbox_drained, []
            for waiter in waiters:
                waiter.callback(None)

    # -- ITransport ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Send ``data``, UTF-8 text (lone surrogates allowed), as one message; ``b""`` sends
        an empty message. A character split across writes waits for its end.
        """
        if self._state != OPEN_STATE:
            return
        if type(data) is not bytes:
            if not isinstance(data, bytes):
                raise TypeError(f"write() takes bytes, not {type(data).__name__}")
            data = bytes(data)  # a subclass (BinaryMessage among them) is written as text
        if self._pending_utf8:
            data = self._pending_utf8 + data
        elif self._raw:
            if data.isascii():  # its own UTF-8 payload, nothing to replace
                self._enqueue(data)
                return
        elif not data.translate(None, VERBATIM_BYTES):  # JSON would copy it as it is
            self._enqueue(b'"' + data + b'"')
            return
        try:
            text, used = _utf8_decode(data, "surrogatepass", False)
        except UnicodeDecodeError as error:
            self._service.event(_events.INVALID_UTF8, self, sockjs_error=str(error))
            self._pending_utf8 = b""
            self.close_with_code(*INVALID_UTF8)
            return
        self._pending_utf8 = data[used:] if used < len(data) else b""
        if text or not data:
            self._enqueue(self._encode(text))

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """Send the concatenation of ``data`` as one message."""
        self.write(b"".join(data))

    def writeBinary(self, data: bytes) -> None:
        """
        Send ``data`` as one binary message: only the raw websocket carries them.

        :raises ValueError: on any other transport (SockJS messages are text).
        """
        if not self._raw:
            raise ValueError(
                f"binary messages need the raw websocket, not {self._info.transport_name}"
            )
        if not isinstance(data, bytes):
            raise TypeError(f"writeBinary() takes bytes, not {type(data).__name__}")
        if self._state == OPEN_STATE:
            self._enqueue(BinaryMessage(data))

    @property
    def message_encoder(self) -> Callable[[str], bytes]:
        """Turns a message into this session's wire form, for :meth:`send_encoded`."""
        return self._encode

    def send_encoded(self, encoded: bytes) -> None:
        """Queue a message already passed through :attr:`message_encoder` (see ``broadcast``)."""
        if self._state == OPEN_STATE:
            self._enqueue(encoded)

    def _enqueue(self, encoded: bytes) -> None:
        self._queue.append(encoded)
        self._queued_bytes += len(encoded)
        if not self._dirty:
            self._dirty = True
            self._service.mark_dirty(self)
        if self._queued_bytes > self._service.options.high_watermark:
            # One message alone never overflows: its size is the application's choice.
            if (
                self._queued_bytes > self._service.options.max_queued_bytes
                and len(self._queue) > 1
            ):
                self._overflow()
            elif not self._over_watermark:
                self._update_flow()

    def _overflow(self) -> None:
        """The client reads less than it is sent: drop the queue and close (on next flush)."""
        self._service.event(
            _events.SEND_BUFFER_FULL, self, sockjs_limit=self._service.options.max_queued_bytes
        )
        self._drop_queue()
        self.disconnecting = True
        self._state = CLOSING_STATE
        self._close_frame = close_frame(*SEND_BUFFER_FULL)
        self._lost_reason = Failure(ConnectionLost("The client did not read what it was sent."))
        self._update_flow()

    def _drop_queue(self) -> None:
        self._queue = []
        self._queued_bytes = 0

    def loseConnection(self) -> None:
        """Close with 3000 ``"Go away!"`` once queued messages are sent."""
        self.close(3000, "Go away!")

    def end(self) -> None:
        """Close with 1000 ``"Normal closure"``, as sockjs-node's ``end()``."""
        self.close()

    def close(self, code: int = 1000, reason: str = "Normal closure") -> None:
        """
        Close the session with ``code`` and ``reason`` once queued messages are sent.

        :raises ValueError: for a code other than 1000 or an application code (3000-4999).
        """
        if not (code == 1000 or 3000 <= code <= 4999):
            raise ValueError(f"close code must be 1000 or 3000-4999, not {code}")
        self.close_with_code(code, reason)

    def close_with_code(self, code: int, reason: str) -> None:
        """
        Close the session with any code, the protocol's own included (1002, 1007, 1011):
        txsockjs uses it for errors; applications use :meth:`close`.
        """
        if self._state == OPEN_STATE:
            self._begin_close(close_frame(code, reason))

    def abortConnection(self) -> None:
        """Close now: queued messages are dropped."""
        if self._state == CLOSED_STATE:
            return
        self._drop_queue()
        if self._state == OPEN_STATE:
            self._close_frame = close_frame(3000, "Go away!")
        self._state = CLOSING_STATE
        self._lost_reason = Failure(ConnectionAborted())
        self._flush()
        if self._state != CLOSED_STATE:
            self._state = CLOSED_STATE
            self._lose(self._lost_reason, _stats.ABORTED)
            self._service.expire_later(self)

    def _begin_close(self, frame: bytes) -> None:
        self.disconnecting = True
        self._state = CLOSING_STATE
        self._close_frame = frame
        self._flush()

    def getPeer(self) -> IAddress:
        """The client's address (see the ``trusted_proxies`` option)."""
        return self._info.peer

    def getHost(self) -> IAddress:
        """The server's address."""
        return self._info.host

    # -- ISockJSTransport -----------------------------------------------------------------------

    @property
    def headers(self) -> Mapping[str, str]:
        return self._info.headers

    @property
    def url(self) -> str:
        return self._info.url

    @property
    def path(self) -> str:
        return self._info.path

    @property
    def prefix(self) -> str:
        return self._info.prefix

    @property
    def transportName(self) -> str:
        return self._info.transport_name

    @property
    def state(self) -> str:
        return self._state

    @property
    def readable(self) -> bool:
        return self._state == OPEN_STATE

    @property
    def writable(self) -> bool:
        return self._state == OPEN_STATE

    def logPrefix(self) -> str:
        return f"SockJS {self._info.transport_name}"

    # -- IConsumer: the application's producer --------------------------------------------------

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Register a push (``streaming``) or pull producer; it is paused by backpressure."""
        if self._producer is not None:
            raise RuntimeError(f"Cannot register producer {producer!r}: one is registered")
        self._producer = producer
        self._streaming = streaming
        self._producer_paused = False
        if self._state == CLOSED_STATE:
            self._stop_producer()
            return
        self._update_flow()

    def unregisterProducer(self) -> None:
        self._producer = None
        self._producer_paused = False

    def _stop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()

    def _update_flow(self) -> None:
        """
        Backpressure, in one place. Above ``high_watermark`` queued bytes, and until the
        queue is back under ``low_watermark``, the client is not read from; the producer is
        paused while that lasts or while the receiver's connection is full.
        """
        options = self._service.options
        if self._over_watermark:
            if self._queued_bytes <= options.low_watermark:
                self._over_watermark = False
                if not self._app_paused:
                    self._set_reading(False)
        elif self._queued_bytes > options.high_watermark and self._state != CLOSED_STATE:
            self._over_watermark = True
            if not self._app_paused:
                self._set_reading(True)
        producer = self._producer
        if producer is None or self._state == CLOSED_STATE:
            return
        blocked = self._over_watermark or self._receiver_paused
        # Call the methods, never adapt: producers need not declare their interface
        # (twisted.protocols.basic.FileSender provides only IProducer), and Twisted's own
        # consumers call them the same way.
        if self._streaming:
            if blocked and not self._producer_paused:
                self._producer_paused = True
                cast(IPushProducer, producer).pauseProducing()
            elif not blocked and self._producer_paused:
                self._producer_paused = False
                cast(IPushProducer, producer).resumeProducing()
        elif not blocked and not self._queue and self._state == OPEN_STATE:
            cast(IPullProducer, producer).resumeProducing()

    # -- IPushProducer: pause delivery of client messages -------------------------------------

    def pauseProducing(self) -> None:
        """Stop delivering client messages; they wait, and so do their senders."""
        if not self._app_paused:
            self._app_paused = True
            if not self._over_watermark:
                self._set_reading(True)

    def resumeProducing(self) -> None:
        """Deliver the messages that waited, and go on delivering."""
        if self._app_paused:
            self._app_paused = False
            if not self._over_watermark:
                self._set_reading(False)

    def stopProducing(self) -> None:
        """Drop the session, as a transport does."""
        self.abortConnection()

    # -- sending --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Called by the service once per reactor turn when messages were queued."""
        self._dirty = False
        self._flush()

    def _flush(self) -> None:
        """
        Send what is queued while the receiver takes it, in frames of at most about
        ``high_watermark`` bytes (so a full connection buffers at most one of them), then the
        close frame once the queue is empty.
        """
        if self._receiver is None:
            return
        while self._queue and not self._receiver_paused:
            if not self._send_messages(self._take_batch()):
                break
        if (
            self._receiver is not None
            and not self._queue
            and self._state != OPEN_STATE
            and self._close_frame is not None
        ):
            self._finish_close()
        if (
            self._over_watermark
            or self._producer is not None
            or self._queued_bytes > self._service.options.high_watermark
        ):
            self._update_flow()  # otherwise it would change nothing

    def _take_batch(self) -> list[bytes]:
        queue = self._queue
        limit = self._service.options.high_watermark
        stats = self._stats
        if self._queued_bytes <= limit:
            stats.messages_out += len(queue)
            stats.bytes_out += self._queued_bytes
            self._queue = []
            self._queued_bytes = 0
            return queue
        size = 0
        count = 0
        for message in queue:
            size += len(message)
            count += 1
            if size >= limit:
                break
        batch = queue[:count]
        del queue[:count]
        self._queued_bytes -= size
        stats.messages_out += count
        stats.bytes_out += size
        return batch

    def _send_messages(self, messages: list[bytes]) -> bool:
        """Send queued messages; ``False`` when the receiver is gone afterwards."""
        if self._raw:
            receiver = self._receiver
            assert receiver is not None
            cast(IRawReceiver, receiver).send_messages(messages)
        else:
            self._send(message_frame(messages))
        return self._receiver is not None

    def _send(self, frame: bytes) -> None:
        receiver = self._receiver
        assert receiver is not None
        if not receiver.send_frame(frame):
            self._receiver = None
            self._receiver_paused = False
            self._service.heartbeats.cancel(self)
            receiver.end()
            self._service.expire_later(self)

    def _finish_close(self) -> None:
        receiver = self._receiver
        assert receiver is not None and self._close_frame is not None
        self._receiver = None
        self._service.heartbeats.cancel(self)
        receiver.send_frame(self._close_frame)
        receiver.end()
        was_closed = self._state == CLOSED_STATE
        self._state = CLOSED_STATE
        if not was_closed:
            self._lose(
                self._lost_reason or Failure(ConnectionDone()),
                _stats.close_reason(self._close_frame, self._lost_reason),
            )
        self._service.expire_later(self)

    def _lose(self, reason: Failure, why: str = _stats.OTHER) -> None:
        """
        Tell the protocol, exactly once, and release what the session holds; the session
        is counted closed for ``why`` (see :data:`txsockjs._core.stats.CLOSE_REASONS`).
        """
        self.disconnecting = True
        self._pending_utf8 = b""
        self._inbox.clear()
        self._inbox_bytes = 0
        waiters, self._inbox_drained = self._inbox_drained, []
        for waiter in waiters:
            waiter.callback(None)
        self._stop_producer()
        protocol, self._protocol = self._protocol, None
        self._service.session_closed(self, why, protocol is not None)
        if protocol is not None:
            try:
                protocol.connectionLost(reason)
            except Exception:
                self._service.protocol_error(self, "connectionLost")

    def __repr__(self) -> str:
        return f"<SockJS session {self._info.transport_name} {self._state}>"
