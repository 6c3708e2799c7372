"""
Limits and hostile input against a real server: bodies and websocket messages over
``max_message_bytes``, broken framing, requests that are not what they claim to be. After
each, the server keeps serving and other sessions are undisturbed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.protocols import wire
from twisted.python.failure import Failure

from txsockjs import SockJSFactory

from .clients import TIMEOUT, WebSocketClient, with_timeout
from .servers import DISCONNECT_DELAY, Harness

LIMIT = 1024


# -- request bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["xhr-polling", "jsonp-polling"])
@pytest_twisted.ensureDeferred
async def test_body_over_limit_413(harness: Harness, transport: str) -> None:
    """
    A send body over max_message_bytes gets 413 from a plain Site (where the body was
    buffered by twisted.web); the session is not disturbed.
    """
    client = await harness.open(transport, "limited")
    big = json.dumps(["x" * LIMIT])
    response = await client.post_send(big)
    assert response.code == 413
    assert b"Payload too large." in await treq.content(response)
    assert harness.limited_controls[0].received == []
    # Just under the limit is fine.
    fits = "y" * (LIMIT - len('[""]') - (40 if transport == "jsonp-polling" else 0))
    await client.send(fits)
    assert await client.recv() == fits


class RawHTTP(Protocol):
    """
    A raw HTTP/1.1 client: sends a request head, then, as a pull producer, an endless
    chunked body (64 KiB chunks written as fast as the socket takes them) until an answer
    arrives or ``max_body`` bytes are sent.
    """

    def __init__(self, head: bytes, chunked: bool, max_body: int):
        self.head = head
        self.chunked = chunked
        self.max_body = max_body
        self.sent = 0
        self.response = b""
        self.answered: Deferred[None] = Deferred()
        self.closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.head)
        if self.chunked:
            self.transport.registerProducer(self, False)

    def resumeProducing(self) -> None:
        if self.response or self.sent >= self.max_body:
            return
        chunk = b"x" * 65536
        self.sent += len(chunk)
        self.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def pauseProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass

    def dataReceived(self, data: bytes) -> None:
        self.response += data
        if not self.answered.called and b"\r\n\r\n" in self.response:
            self.answered.callback(None)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.answered.called:
            self.answered.callback(None)
        self.closed.callback(None)


async def raw_request(reactor: Any, port: int, proto: RawHTTP, server_closes: bool) -> RawHTTP:
    """
    Run ``proto`` against 127.0.0.1:``port`` until the answer's head has arrived and,
    when ``server_closes``, until the server closed the connection (else close it).
    """
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    await endpoint.connect(Factory.forProtocol(lambda: proto))
    await with_timeout(reactor, proto.answered)
    if not server_closes:
        proto.transport.loseConnection()
    await with_timeout(reactor, proto.closed)
    return proto


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest_twisted.ensureDeferred
async def test_streaming_body_limit(harness: Harness, reactor: Any, chunked: bool) -> None:
    """
    A SockJSFactory refuses a body over max_message_bytes with 413 while it streams in:
    an endless chunked body is answered long before it could have been buffered, and a
    declared Content-Length over the limit is answered before any body byte is sent.
    Then the server goes on serving.
    """
    factory = SockJSFactory(
        Factory.forProtocol(wire.Echo),
        prefix="/echo",
        max_message_bytes=LIMIT,
        disconnect_delay=DISCONNECT_DELAY,
    )
    port = await harness.listen(factory, {"factory/echo": factory.sockjs})
    client = await harness.open("xhr-polling", base_url=f"http://127.0.0.1:{port}/echo")
    path = f"/echo/000/{client.session_id}/xhr_send".encode()
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n"
    else:
        framing = b"Content-Length: %d\r\n" % (64 * 1024 * 1024)
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: text/plain\r\n%s\r\n" % (
        path,
        port,
        framing,
    )
    max_body = 256 * 1024 * 1024
    proto = await raw_request(reactor, port, RawHTTP(head, chunked, max_body), True)
    assert proto.response.startswith(b"HTTP/1.1 413 "), proto.response[:200]
    assert b"Payload too large." in proto.response
    # Refused while streaming: far less than the endless body was ever sent.
    print(f"sent {proto.sent} body bytes before the 413")
    assert proto.sent < max_body // 4, proto.sent
    # The session and the server are fine.
    await client.send("after 413")
    assert await client.recv() == "after 413"


class Collector(Protocol):
    """A raw client that keeps every byte the server sends, and tells when it has enough."""

    def __init__(self) -> None:
        self.data = b""
        self.closed: Deferred[None] = Deferred()
        self._waiting: list[tuple[Any, Deferred[None]]] = []

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        waiting, self._waiting = self._waiting, []
        for predicate, d in waiting:
            if predicate(self.data):
                d.callback(None)
            else:
                self._waiting.append((predicate, d))

    def until(self, predicate: Any) -> Deferred[None]:
        """Fires once ``predicate(all bytes so far)`` holds."""
        d: Deferred[None] = Deferred()
        if predicate(self.data):
            d.callback(None)
        else:
            self._waiting.append((predicate, d))
        return d

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.closed.callback(None)


async def connect_raw(reactor: Any, port: int) -> Collector:
    proto = Collector()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    await endpoint.connect(Factory.forProtocol(lambda: proto))
    return proto


@pytest_twisted.ensureDeferred
async def test_no_100_continue_after_413(harness: Harness, reactor: Any) -> None:
    """
    A declared body over the limit with ``Expect: 100-continue``: the 413 is the one and
    only answer on the connection, which the server then closes.
    """
    factory = SockJSFactory(
        Factory.forProtocol(wire.Echo),
        prefix="/echo",
        max_message_bytes=LIMIT,
        disconnect_delay=DISCONNECT_DELAY,
    )
    port = await harness.listen(factory, {"factory/echo": factory.sockjs})
    proto = await connect_raw(reactor, port)
    proto.transport.write(
        b"POST /echo/000/abc/xhr_send HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (64 * 1024 * 1024)
    )
    await with_timeout(reactor, proto.closed)
    assert proto.data.startswith(b"HTTP/1.1 413 "), proto.data[:200]
    assert b"100 Continue" not in proto.data, proto.data
    assert proto.data.count(b"HTTP/1.") == 1, proto.data


@pytest.mark.parametrize(
    "path",
    [
        "heartbeat/000/{sid}/eventsource",
        "heartbeat/000/{sid}/htmlfile?c=cb",
        "heartbeat/000/{sid}/jsonp?c=cb",
        "heartbeat/info",
        "heartbeat/iframe.html",
    ],
)
@pytest_twisted.ensureDeferred
async def test_head_keeps_a_keep_alive_connection_in_step(
    harness: Harness, reactor: Any, path: str
) -> None:
    """
    HEAD on a GET resource sends its headers and nothing else, and opens no session: after
    three heartbeat periods of the service, the next request on the same connection gets
    its own answer, whole and alone.
    """
    service = harness.services["heartbeat"].service
    proto = await connect_raw(reactor, harness.port.getHost().port)
    target = "/" + path.format(sid=uuid.uuid4().hex[:8])
    proto.transport.write(f"HEAD {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await with_timeout(reactor, proto.until(lambda data: b"\r\n\r\n" in data))
    assert proto.data.startswith(b"HTTP/1.1 200 "), proto.data[:200]
    assert len(service) == 0
    await deferLater(reactor, 0.35, lambda: None)  # heartbeat_delay is 0.1 s
    head, _, after = proto.data.partition(b"\r\n\r\n")
    assert after == b"", f"HEAD answered with a body: {after[:200]!r}"
    proto.transport.write(
        b"GET /heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    await with_timeout(reactor, proto.closed)
    second = proto.data[len(head) + 4 :]
    assert second.startswith(b"HTTP/1.1 200 "), second[:200]
    assert second.endswith(b"\r\n\r\nWelcome to SockJS!\n"), second
    assert second.count(b"HTTP/1.1 ") == 1
    assert len(service) == 0


# -- websocket messages ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "raw-websocket"])
@pytest_twisted.ensureDeferred
async def test_websocket_message_over_limit_1009(harness: Harness, transport: str) -> None:
    """A websocket message over max_message_bytes: close 1009; other sessions go on."""
    bystander = await harness.open(transport, "limited")
    client: WebSocketClient = await harness.open(transport, "limited")
    payload = json.dumps(["x" * LIMIT]) if transport == "websocket" else "x" * (LIMIT + 1)
    client.send_raw(payload.encode())
    closed = await client.wait_ws_closed()
    assert closed.code == 1009, closed
    # A message just at the limit passes.
    at_limit = "y" * LIMIT if transport == "raw-websocket" else "y" * (LIMIT - 4)
    await bystander.send(at_limit)
    assert await bystander.recv() == at_limit
    assert all(control.received == [] for control in harness.limited_controls[1:])


@pytest.mark.parametrize(
    "payload",
    [b'["a', b'{"a": 1}', b"[1, 2]", b'"unterminated', b"\xff\xfe", b"42"],
    ids=["unterminated-array", "object", "numbers", "unterminated-string", "bad-utf8", "42"],
)
@pytest_twisted.ensureDeferred
async def test_websocket_broken_json(harness: Harness, payload: bytes) -> None:
    """Broken SockJS framing over the websocket closes it; other sessions go on."""
    bystander = await harness.open("websocket", "control")
    client: WebSocketClient = await harness.open("websocket", "control")
    client.send_raw(payload)
    closed = await client.wait_ws_closed()
    if payload == b"\xff\xfe":
        assert closed.code == 1007, closed  # not UTF-8: a websocket protocol error
    else:
        assert (closed.code, closed.reason) == (3000, "Broken framing."), closed
    assert harness.controls[1].received == []
    [reason] = await with_timeout(harness.reactor, harness.controls[1].lost)
    assert reason.check(ConnectionLost)
    await bystander.send("fine")
    assert await bystander.recv() == "fine"


@pytest.mark.parametrize("transport", ["websocket", "raw-websocket"])
@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
@pytest_twisted.ensureDeferred
async def test_websocket_message_sizes(harness: Harness, transport: str, size: int) -> None:
    """Every websocket length encoding, both ways, whole and fragmented."""
    harness.mount("big", Factory.forProtocol(wire.Echo), max_message_bytes=1024 * 1024)
    client: WebSocketClient = await harness.open(transport, "big")
    text = ("é" * size)[:size] if size % 2 else "a" * size
    if transport == "websocket":
        payload = json.dumps([text]).encode()
    else:
        payload = text.encode()
    client.protocol.sendMessage(payload, False)
    client.protocol.sendMessage(payload, False, fragmentSize=max(1, len(payload) // 3 + 1))
    await client.send("end")
    # Echo writes nothing back for an empty message (as over TCP).
    assert await client.recv_text(2 * size + 3) == text * 2 + "end"


# -- requests that are not what they claim ---------------------------------------------------


UPGRADE_HEAD = (
    b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.mark.parametrize(
    "path",
    [
        b"/echo/nonexistent",
        b"/echo/a/b/c/websocket",
        b"/echo/0/0/websocketx",
        b"/echo/0/0/xhr/websocket",
        b"/nowhere/websocket",
        b"/echo/0./0/websocket",
        b"/echo/0/0/websocket/",
    ],
)
@pytest_twisted.ensureDeferred
async def test_upgrade_to_unknown_path_404(harness: Harness, reactor: Any, path: bytes) -> None:
    """An upgrade request to an unknown path: 404, and the server keeps serving."""
    port = harness.port.getHost().port
    proto = await raw_request(reactor, port, RawHTTP(UPGRADE_HEAD % path, False, 0), False)
    assert proto.response.startswith(b"HTTP/1.1 404 "), proto.response[:200]
    # An autobahn client is refused too.
    client = harness.client("websocket")
    client.url_override = f"ws://127.0.0.1:{port}{path.decode()}"
    with pytest.raises(ConnectionError, match="404"):
        await client.connect()
    # And the server keeps serving every kind of client.
    ws = await harness.open("websocket")
    await ws.send("alive")
    assert await ws.recv() == "alive"
    xhr = await harness.open("xhr-polling")
    await xhr.send("alive")
    assert await xhr.recv() == "alive"


@pytest_twisted.ensureDeferred
async def test_websocket_http_errors(harness: Harness) -> None:
    """A websocket URL without a proper upgrade: 400; other methods: 405 with Allow."""
    for url in (harness.url("echo/0/0/websocket"), harness.url("echo/websocket")):
        response = await harness.http.get(url)
        assert response.code == 400
        assert b'Can "Upgrade" only to "WebSocket".' in await treq.content(response)
        response = await harness.http.get(
            url, headers={b"Upgrade": [b"websocket"], b"Connection": [b"close"]}
        )
        assert response.code == 400
        await treq.content(response)
        response = await harness.http.post(url, data=b"")
        assert response.code == 405
        assert response.headers.getRawHeaders(b"Allow")
        assert await treq.content(response) == b""


@pytest_twisted.ensureDeferred
async def test_many_concurrent_sessions(harness: Harness, reactor: Any) -> None:
    """Fifty sessions over every transport at once, each echoing its own messages."""
    from .clients import SOCKJS_TRANSPORTS, gather

    clients = [harness.client(t) for t in SOCKJS_TRANSPORTS for _ in range(8)]
    await gather(reactor, [c.open() for c in clients], timeout=TIMEOUT * 2)

    async def talk(client: Any, n: int) -> None:
        await client.send(f"{n}-a", f"{n}-b")
        assert await client.recv_many(2) == [f"{n}-a", f"{n}-b"]

    await gather(reactor, [talk(c, n) for n, c in enumerate(clients)], timeout=TIMEOUT * 2)
