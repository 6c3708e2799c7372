"""
Real SockJS clients for the integration tests: one per transport, all with the same API.

HTTP transports go through treq (an ``Agent`` with its own connection pool), reading every
response body incrementally with ``deliverBody`` so that a test can pause a slow reader;
websockets go through autobahn's Twisted client. Every wait is a Deferred with a bounded
timeout: nothing here sleeps.

A client turns what arrives into :class:`Event` objects (``open``, ``message``,
``heartbeat``, ``close``) in a queue, and also keeps every raw SockJS frame in ``frames``.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import treq
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss

#: SockJS transports, as sockjs-client names them.
HTTP_STREAMING = ("xhr-streaming", "eventsource", "htmlfile")
HTTP_POLLING = ("xhr-polling", "jsonp-polling")
HTTP_TRANSPORTS = HTTP_STREAMING + HTTP_POLLING
SOCKJS_TRANSPORTS = ("websocket",) + HTTP_TRANSPORTS
#: Every way of talking to a service, the raw websocket (``/websocket``) included.
ALL_TRANSPORTS = SOCKJS_TRANSPORTS + ("raw-websocket",)

#: Seconds any single wait of a test may take before it fails.
TIMEOUT = 10.0

CALLBACK = b"_jp.cb0"


def with_timeout(reactor: Any, d: Deferred[Any], timeout: float = TIMEOUT) -> Deferred[Any]:
    """``d``, failing with ``defer.TimeoutError`` after ``timeout`` seconds."""
    return d.addTimeout(timeout, reactor)


@dataclass(frozen=True)
class Event:
    """What a client saw: ``open``, ``message`` (``text``), ``heartbeat`` or ``close``."""

    kind: str
    text: str = ""
    code: int = 0
    reason: str = ""


class ProtocolViolation(AssertionError):
    """The server sent something the SockJS protocol does not allow."""


def parse_frame(frame: str) -> list[Event]:
    """The events of one SockJS frame."""
    if frame == "o":
        return [Event("open")]
    if frame == "h":
        return [Event("heartbeat")]
    if frame.startswith("a["):
        messages = json.loads(frame[1:])
        if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
            raise ProtocolViolation(f"bad message frame {frame[:200]!r}")
        return [Event("message", text=m) for m in messages]
    if frame.startswith("c["):
        code, reason = json.loads(frame[1:])
        return [Event("close", code=code, reason=reason)]
    raise ProtocolViolation(f"unknown frame {frame[:200]!r}")


# -- incremental decoders of response bodies, one per HTTP receiving transport ---------------


class XhrDecoder:
    """``FRAME\\n`` lines; xhr-streaming starts with a prelude of 2048 ``h`` and ``\\n``."""

    def __init__(self, streaming: bool):
        self._buffer = b""
        self._prelude = streaming

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if self._prelude and lines:
            prelude = lines.pop(0)
            if prelude != b"h" * 2048:
                raise ProtocolViolation(f"bad xhr-streaming prelude {prelude[:40]!r}")
            self._prelude = False
        return [line.decode("ascii") for line in lines]

    def end(self) -> None:
        if self._buffer:
            raise ProtocolViolation(f"unterminated frame {self._buffer[:100]!r}")


class EventSourceDecoder:
    """A ``\\r\\n`` prelude, then ``data: FRAME\\r\\n\\r\\n`` with ``%`` escaped."""

    def __init__(self) -> None:
        self._buffer = b""
        self._prelude = True

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        if self._prelude:
            if len(self._buffer) < 2:
                return []
            if not self._buffer.startswith(b"\r\n"):
                raise ProtocolViolation(f"bad eventsource prelude {self._buffer[:20]!r}")
            self._buffer = self._buffer[2:]
            self._prelude = False
        *events, self._buffer = self._buffer.split(b"\r\n\r\n")
        frames = []
        for event in events:
            if not event.startswith(b"data: "):
                raise ProtocolViolation(f"bad event {event[:100]!r}")
            # sockjs-client runs decodeURI on every event.
            frames.append(urllib.parse.unquote(event[6:].decode("ascii")))
        return frames

    def end(self) -> None:
        if self._buffer:
            raise ProtocolViolation(f"unterminated event {self._buffer[:100]!r}")


class HtmlFileDecoder:
    """An HTML page (1 KiB at least), then ``<script>\\np("FRAME");\\n</script>\\r\\n``."""

    _START = b"<script>\np("
    _END = b");\n</script>\r\n"

    def __init__(self, callback: bytes):
        self._buffer = b""
        self._callback = callback
        self._prelude = True

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        if self._prelude:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return []
            page, self._buffer = self._buffer[: end + 4], self._buffer[end + 4 :]
            if len(page) < 1024 or b"parent.%s;" % self._callback not in page:
                raise ProtocolViolation(f"bad htmlfile page {page[:200]!r}")
            self._prelude = False
        frames = []
        while True:
            end = self._buffer.find(self._END)
            if end < 0:
                break
            block, self._buffer = self._buffer[:end], self._buffer[end + len(self._END) :]
            if not block.startswith(self._START):
                raise ProtocolViolation(f"bad htmlfile script {block[:100]!r}")
            literal = block[len(self._START) :]
            if b"</" in literal or b"<" in literal:
                raise ProtocolViolation(f"unescaped '<' in a script context {literal[:100]!r}")
            frames.append(json.loads(literal))
        return frames

    def end(self) -> None:
        if self._prelude or self._buffer:
            raise ProtocolViolation(f"unterminated htmlfile body {self._buffer[:100]!r}")


class JsonpDecoder:
    """One ``/**/CALLBACK("FRAME");\\r\\n``."""

    def __init__(self, callback: bytes):
        self._buffer = b""
        self._head = b"/**/" + callback + b"("

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        return []

    def end(self) -> list[str]:
        body = self._buffer
        if not (body.startswith(self._head) and body.endswith(b");\r\n")):
            raise ProtocolViolation(f"bad jsonp body {body[:200]!r}")
        literal = body[len(self._head) : -4]
        if b"<" in literal:
            raise ProtocolViolation(f"unescaped '<' in a script context {literal[:100]!r}")
        return [json.loads(literal)]


class BodyReader(Protocol):
    """Feeds a response body to a decoder as it arrives; ``done`` fires at its end."""

    def __init__(self, decoder: Any, on_frame: Callable[[str], None]):
        self.decoder = decoder
        self.on_frame = on_frame
        self.done: Deferred[None] = Deferred()
        self.failed: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        if self.failed is not None:
            return
        try:
            for frame in self.decoder.feed(data):
                self.on_frame(frame)
        except Exception:
            self.failed = Failure()
            self.transport.stopProducing()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.failed is not None:
            self.done.errback(self.failed)
            return
        if not reason.check(ResponseDone, PotentialDataLoss):
            self.done.errback(reason)
            return
        try:
            for frame in self.decoder.end() or ():
                self.on_frame(frame)
        except Exception:
            self.done.errback(Failure())
            return
        self.done.callback(None)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.stopProducing()


# -- clients -----------------------------------------------------------------------------------


class SockJSClient:
    """
    One SockJS session seen from the client side.

    :param reactor: the running reactor.
    :param http: a ``HTTPClient`` (HTTP transports).
    :param base_url: the service's URL, ``http://127.0.0.1:PORT/prefix``.
    :param session_id: reuse a session id (default: a fresh uuid).
    """

    transport = ""

    def __init__(self, reactor: Any, http: HTTPClient, base_url: str, session_id: str = ""):
        self.reactor = reactor
        self.http = http
        self.base_url = base_url
        self.session_id = session_id or uuid.uuid4().hex
        self.session_url = f"{base_url}/000/{self.session_id}"
        self.events: DeferredQueue[Event] = DeferredQueue()
        self.frames: list[str] = []
        #: Keep every frame in ``frames`` (off for bulk transfers).
        self.record_frames = True
        self.closed: Event | None = None
        #: When set, called with each event instead of queueing it (bulk tests).
        self.sink: Callable[[Event], None] | None = None
        self._failure: Failure | None = None

    # feeding
    def _frame(self, frame: str) -> None:
        if self.record_frames:
            self.frames.append(frame)
        for event in parse_frame(frame):
            self._event(event)

    def _event(self, event: Event) -> None:
        if event.kind == "close" and self.closed is None:
            self.closed = event
        if self.sink is not None:
            self.sink(event)
        else:
            self.events.put(event)

    def _fail(self, failure: Failure) -> None:
        if self._failure is None:
            self._failure = failure
        self.events.put(Event("error", text=failure.getTraceback()))

    # waiting
    async def next_event(self, timeout: float = TIMEOUT) -> Event:
        """The next event (heartbeats included)."""
        event: Event = await with_timeout(self.reactor, self.events.get(), timeout)
        if event.kind == "error":
            raise AssertionError(f"{self.transport} client failed:\n{event.text}")
        return event

    async def recv(self, timeout: float = TIMEOUT) -> str:
        """The next message; heartbeats are skipped, a close fails."""
        while True:
            event = await self.next_event(timeout)
            if event.kind == "message":
                return event.text
            if event.kind != "heartbeat":
                raise AssertionError(f"expected a message over {self.transport}, got {event}")

    async def recv_many(self, count: int, timeout: float = TIMEOUT) -> list[str]:
        return [await self.recv(timeout) for _ in range(count)]

    async def recv_text(self, length: int, timeout: float = TIMEOUT) -> str:
        """Messages concatenated (a byte stream, as TCP protocols see it) up to ``length``."""
        text = ""
        while len(text) < length:
            text += await self.recv(timeout)
        return text

    async def wait_closed(self, timeout: float = TIMEOUT) -> Event:
        """Skip messages and heartbeats up to the close event, and return it."""
        while True:
            event = await self.next_event(timeout)
            if event.kind == "close":
                return event

    async def open(self, timeout: float = TIMEOUT) -> Any:
        """Connect and wait for the ``o`` frame."""
        await self.start(timeout)
        await self.expect_open(timeout)
        return self

    # subclass API
    async def start(self, timeout: float = TIMEOUT) -> None:
        """Connect, without waiting for any frame (events go to ``sink`` or the queue)."""
        raise NotImplementedError

    async def send(self, *messages: str) -> None:
        raise NotImplementedError

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    async def abort(self) -> None:
        """Drop every connection at once and wait until they are gone."""
        raise NotImplementedError

    async def expect_open(self, timeout: float) -> None:
        event = await self.next_event(timeout)
        if event.kind != "open":
            raise AssertionError(f"expected 'o' over {self.transport}, got {event}")


class HttpClient(SockJSClient):
    """The receiving loop (one request after the other) of every HTTP transport."""

    path = ""
    method = "POST"
    send_path = "xhr_send"
    streaming = False

    def __init__(self, *args: Any, jsonp_form: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.requests = 0
        self.jsonp_form = jsonp_form
        self._stopping = False
        #: Requests waiting for their response, and bodies being read: abort() drops them.
        self._pending: set[Deferred[Any]] = set()
        self._readers: set[BodyReader] = set()
        self._loop: Deferred[None] | None = None
        self._paused = False

    def decoder(self) -> Any:
        raise NotImplementedError

    def receive_url(self) -> str:
        return f"{self.session_url}/{self.path}"

    async def receive_once(
        self, on_frame: Callable[[str], None] | None = None, stop_after: int = 0
    ) -> list[str]:
        """
        One receiving request; its frames, or, with ``on_frame``, nothing: each frame is
        handed to ``on_frame`` as it comes (and not kept).

        :param stop_after: drop the connection after that many frames (0: read to the end).
        """
        got: list[str] = []
        count = 0
        reader: BodyReader | None = None

        def frame(f: str) -> None:
            nonlocal count
            count += 1
            if on_frame is None:
                got.append(f)
            else:
                on_frame(f)
            if stop_after and count >= stop_after and reader is not None:
                reader.abort()

        pending = self.http.request(
            self.method,
            self.receive_url(),
            data=b"" if self.method == "POST" else None,
            unbuffered=True,
        )
        self._pending.add(pending)
        try:
            response = await pending
        finally:
            self._pending.discard(pending)
        self.requests += 1
        if response.code != 200:
            body = await treq.content(response)
            raise AssertionError(f"{self.transport}: HTTP {response.code} {body[:200]!r}")
        reader = BodyReader(self.decoder(), frame)
        self._readers.add(reader)
        response.deliverBody(reader)
        if self._paused:
            reader.transport.pauseProducing()
        try:
            await reader.done
        except Exception:
            if not (stop_after and count >= stop_after):
                raise
        finally:
            self._readers.discard(reader)
        return got

    def receive_once_deferred(self, stop_after: int = 0) -> Deferred[list[str]]:
        """:meth:`receive_once`, started now, as a Deferred."""
        return Deferred.fromCoroutine(self.receive_once(stop_after=stop_after))

    async def _run(self) -> None:
        try:
            while not self._stopping and self.closed is None:
                await self.receive_once(self._frame)
        except Exception:
            if not self._stopping:
                self._fail(Failure())

    async def start(self, timeout: float = TIMEOUT) -> None:
        self._loop = Deferred.fromCoroutine(self._run())

    @property
    def reconnects(self) -> int:
        return max(0, self.requests - 1)

    async def send(self, *messages: str) -> None:
        response = await self.post_send(json.dumps(list(messages)))
        body = await treq.content(response)
        if self.send_path == "xhr_send":
            assert (response.code, body) == (204, b""), (response.code, body)
        else:
            assert (response.code, body) == (200, b"ok"), (response.code, body)

    async def post_send(self, payload: str | bytes) -> Any:
        """POST a raw payload to the send URL; the (unread) response."""
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        url = f"{self.session_url}/{self.send_path}"
        if self.send_path == "jsonp_send" and self.jsonp_form:
            body = urllib.parse.urlencode({"d": data}).encode("ascii")
            content_type = b"application/x-www-form-urlencoded"
        else:
            body, content_type = data, b"text/plain;charset=UTF-8"
        return await self.http.post(url, data=body, headers={b"Content-Type": [content_type]})

    def pause_reading(self) -> None:
        self._paused = True
        for reader in self._readers:
            reader.transport.pauseProducing()

    def resume_reading(self) -> None:
        self._paused = False
        for reader in self._readers:
            reader.transport.resumeProducing()

    async def stop(self) -> None:
        """Stop receiving after the current request (no abort)."""
        self._stopping = True
        if self._loop is not None:
            await with_timeout(self.reactor, _chain(self._loop))

    async def abort(self) -> None:
        self._stopping = True
        for pending in list(self._pending):
            pending.cancel()
        for reader in list(self._readers):
            reader.abort()
        if self._loop is not None:
            await with_timeout(self.reactor, _chain(self._loop))


class XhrPollingClient(HttpClient):
    transport = "xhr-polling"
    path = "xhr"

    def decoder(self) -> Any:
        return XhrDecoder(streaming=False)


class XhrStreamingClient(HttpClient):
    transport = "xhr-streaming"
    path = "xhr_streaming"
    streaming = True

    def decoder(self) -> Any:
        return XhrDecoder(streaming=True)


class EventSourceClient(HttpClient):
    transport = "eventsource"
    path = "eventsource"
    method = "GET"
    streaming = True

    def decoder(self) -> Any:
        return EventSourceDecoder()


class HtmlFileClient(HttpClient):
    transport = "htmlfile"
    path = "htmlfile"
    method = "GET"
    streaming = True

    def receive_url(self) -> str:
        return f"{self.session_url}/htmlfile?c={CALLBACK.decode()}"

    def decoder(self) -> Any:
        return HtmlFileDecoder(CALLBACK)


class JsonpPollingClient(HttpClient):
    transport = "jsonp-polling"
    path = "jsonp"
    method = "GET"
    send_path = "jsonp_send"

    def receive_url(self) -> str:
        return f"{self.session_url}/jsonp?c={CALLBACK.decode()}"

    def decoder(self) -> Any:
        return JsonpDecoder(CALLBACK)


class _WebSocketProtocol(WebSocketClientProtocol):  # type: ignore[misc]
    def onOpen(self) -> None:
        self.factory.client._ws_open(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.client._ws_message(payload, isBinary)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.client._ws_closed(wasClean, code, reason)


@dataclass(frozen=True)
class WebSocketClose:
    """How the websocket itself ended."""

    clean: bool
    code: int | None
    reason: str | None


class WebSocketClient(SockJSClient):
    """The SockJS websocket transport: one SockJS frame per text message."""

    transport = "websocket"
    raw = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.protocol: _WebSocketProtocol | None = None
        self._opened: Deferred[None] = Deferred()
        #: Fires with a :class:`WebSocketClose` when the websocket is gone.
        self.ws_closed: Deferred[WebSocketClose] = Deferred()
        self.ws_close: WebSocketClose | None = None
        #: Connect to this URL instead of the transport's own (error tests).
        self.url_override = ""

    def ws_url(self) -> str:
        if self.url_override:
            return self.url_override
        base = self.base_url.replace("http://", "ws://", 1)
        return f"{base}/websocket" if self.raw else f"{base}/000/{self.session_id}/websocket"

    async def connect(self, timeout: float = TIMEOUT) -> None:
        """Open the websocket (the handshake), without waiting for a SockJS frame."""
        url = self.ws_url()
        parsed = urllib.parse.urlparse(url)
        factory = WebSocketClientFactory(url)
        factory.protocol = _WebSocketProtocol
        factory.client = self
        endpoint = TCP4ClientEndpoint(self.reactor, parsed.hostname, parsed.port, timeout=5)
        self.protocol = await with_timeout(self.reactor, endpoint.connect(factory), timeout)
        await with_timeout(self.reactor, self._opened, timeout)

    async def start(self, timeout: float = TIMEOUT) -> None:
        await self.connect(timeout)

    def _ws_open(self, protocol: _WebSocketProtocol) -> None:
        self.protocol = protocol
        self._opened.callback(None)

    def _ws_message(self, payload: bytes, isBinary: bool) -> None:
        try:
            if isBinary:
                raise ProtocolViolation(f"binary websocket message {payload[:100]!r}")
            self._frame(payload.decode("utf-8"))
        except Exception:
            self._fail(Failure())

    def _ws_closed(self, clean: bool, code: int | None, reason: str | None) -> None:
        self.ws_close = WebSocketClose(clean, code, reason)
        if not self._opened.called:
            self._opened.errback(
                Failure(ConnectionError(f"websocket handshake failed: {code} {reason}"))
            )
        self.ws_closed.callback(self.ws_close)

    async def send(self, *messages: str) -> None:
        self.send_raw(json.dumps(list(messages)).encode("ascii"))

    def send_raw(self, payload: bytes, binary: bool = False) -> None:
        assert self.protocol is not None
        self.protocol.sendMessage(payload, binary)

    def pause_reading(self) -> None:
        assert self.protocol is not None
        self.protocol.transport.pauseProducing()

    def resume_reading(self) -> None:
        assert self.protocol is not None
        self.protocol.transport.resumeProducing()

    async def close_websocket(self, code: int = 1000, timeout: float = TIMEOUT) -> WebSocketClose:
        """A clean closing handshake started by the client."""
        assert self.protocol is not None
        if not self.ws_closed.called:
            self.protocol.sendClose(code)
        return await with_timeout(self.reactor, _chain(self.ws_closed), timeout)

    async def wait_ws_closed(self, timeout: float = TIMEOUT) -> WebSocketClose:
        return await with_timeout(self.reactor, _chain(self.ws_closed), timeout)

    async def abort(self) -> None:
        if self.protocol is not None and not self.ws_closed.called:
            self.protocol.transport.abortConnection()
        if self.protocol is not None:
            await with_timeout(self.reactor, _chain(self.ws_closed))


class RawWebSocketClient(WebSocketClient):
    """The raw websocket (``/websocket``): no SockJS framing, each text message one message."""

    transport = "raw-websocket"
    raw = True

    def _ws_open(self, protocol: _WebSocketProtocol) -> None:
        super()._ws_open(protocol)
        self._event(Event("open"))

    def _ws_message(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            self._fail(Failure(ProtocolViolation("binary message")))
            return
        text = payload.decode("utf-8")
        if self.record_frames:
            self.frames.append(text)
        self._event(Event("message", text=text))

    def _ws_closed(self, clean: bool, code: int | None, reason: str | None) -> None:
        super()._ws_closed(clean, code, reason)
        self._event(Event("close", code=code or 0, reason=reason or ""))

    async def send(self, *messages: str) -> None:
        for message in messages:
            self.send_raw(message.encode("utf-8"))


def _chain(d: Deferred[Any]) -> Deferred[Any]:
    """
    A new Deferred with ``d``'s result, leaving ``d`` untouched: awaiting a Deferred, or a
    timeout cancelling it, would otherwise consume it for every later waiter.
    """
    out: Deferred[Any] = Deferred()

    def passthrough(result: Any) -> Any:
        out.callback(result)
        return result

    d.addCallback(passthrough)
    return out


CLIENTS: dict[str, type[SockJSClient]] = {
    "websocket": WebSocketClient,
    "raw-websocket": RawWebSocketClient,
    "xhr-streaming": XhrStreamingClient,
    "eventsource": EventSourceClient,
    "htmlfile": HtmlFileClient,
    "xhr-polling": XhrPollingClient,
    "jsonp-polling": JsonpPollingClient,
}


async def gather(reactor: Any, awaitables: Iterable[Any], timeout: float = TIMEOUT) -> list[Any]:
    """Wait for several coroutines at once (bounded)."""
    ds = [Deferred.fromCoroutine(a) if not isinstance(a, Deferred) else a for a in awaitables]
    results = await with_timeout(reactor, defer.gatherResults(ds, consumeErrors=True), timeout)
    return list(results)
