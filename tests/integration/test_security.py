"""
The origin policy, the ``authenticate`` hook, ``bind_session_to_host`` and
``FirstMessageAuth`` against a real server on 127.0.0.1, with treq and autobahn clients.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
import pytest_twisted
import treq
from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.protocols import wire

from txsockjs.auth import ConnectRequest, FirstMessageAuth

from .clients import (
    CLIENTS,
    SOCKJS_TRANSPORTS,
    TIMEOUT,
    RawWebSocketClient,
    WebSocketClient,
    _WebSocketProtocol,
    with_timeout,
)
from .servers import Harness

APP = "http://app.example"
EVIL = "http://evil.example"


class Whoami(Protocol):
    """Tells its principal first, then echoes."""

    def connectionMade(self) -> None:
        transport: Any = self.transport
        self.transport.write(json.dumps({"principal": transport.principal}).encode())

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


class HeaderWebSocketMixin:
    """A websocket client of the harness that sends an ``Origin`` and extra headers."""

    origin: str | None = None
    headers: dict[str, str] = {}

    async def connect(self, timeout: float = TIMEOUT) -> None:
        client: Any = self
        url = client.ws_url()
        parsed = urllib.parse.urlparse(url)
        factory = WebSocketClientFactory(url, origin=self.origin, headers=self.headers)
        factory.protocol = _WebSocketProtocol
        factory.client = self
        endpoint = TCP4ClientEndpoint(client.reactor, parsed.hostname, parsed.port, timeout=5)
        client.protocol = await with_timeout(client.reactor, endpoint.connect(factory), timeout)
        await with_timeout(client.reactor, client._opened, timeout)


class HeaderWebSocketClient(HeaderWebSocketMixin, WebSocketClient):
    pass


class HeaderRawWebSocketClient(HeaderWebSocketMixin, RawWebSocketClient):
    pass


class HeaderHTTP:
    """treq's ``HTTPClient``, with headers (an ``Origin``, a cookie) on every request."""

    def __init__(self, http: Any, headers: dict[str, str]):
        self._http = http
        self._headers = {name.encode(): [value.encode()] for name, value in headers.items()}

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        headers.update(self._headers)
        return self._http.request(method, url, headers=headers, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)


def make_client(
    harness: Harness, transport: str, path: str, headers: dict[str, str] | None = None
) -> Any:
    """A client of the service at ``path`` sending ``headers`` (``Origin`` included)."""
    headers = headers or {}
    url = harness.url(path)
    client: Any
    if transport in ("websocket", "raw-websocket"):
        kind = HeaderWebSocketClient if transport == "websocket" else HeaderRawWebSocketClient
        client = kind(harness.reactor, harness.http, url)
        client.origin = headers.get("Origin")
        client.headers = {name: value for name, value in headers.items() if name != "Origin"}
    else:
        client = CLIENTS[transport](harness.reactor, HeaderHTTP(harness.http, headers), url)
    harness.clients.append(client)
    return client


async def refused_status(client: Any) -> str:
    """Open ``client`` expecting a refusal; what the refusal said."""
    with pytest.raises(Exception) as caught:
        await client.open()
    return str(caught.value)


# -- the origin policy ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_restricted_origins_over_http(harness: Harness) -> None:
    harness.mount("origins", Factory.forProtocol(wire.Echo), allowed_origins=[APP])
    base = harness.url("origins")
    info = await treq.get(f"{base}/info", headers={"Origin": APP}, pool=harness.pool)
    assert info.code == 200
    assert info.headers.getRawHeaders("access-control-allow-origin") == [APP]
    body = json.loads(await treq.content(info))
    assert "origins" not in body
    assert body["transports"] == ["websocket", "xhr-streaming", "eventsource", "xhr-polling"]
    foreign = await treq.get(f"{base}/info", headers={"Origin": EVIL}, pool=harness.pool)
    assert foreign.headers.getRawHeaders("access-control-allow-origin") is None
    await treq.content(foreign)
    for path in ("iframe.html", "0/a/htmlfile?c=cb", "0/a/jsonp?c=cb"):
        response = await treq.get(f"{base}/{path}", pool=harness.pool)
        assert response.code == 404, path
        await treq.content(response)
    refused = await treq.post(f"{base}/0/a/xhr", headers={"Origin": EVIL}, pool=harness.pool)
    assert (refused.code, await treq.content(refused)) == (403, b"Origin not allowed.\n")
    assert len(harness.services["origins"].service) == 0


@pytest.mark.parametrize(
    "transport", ["websocket", "raw-websocket", "xhr-streaming", "eventsource", "xhr-polling"]
)
@pytest_twisted.ensureDeferred
async def test_restricted_origins_per_transport(harness: Harness, transport: str) -> None:
    harness.mount("origins", Factory.forProtocol(wire.Echo), allowed_origins=[APP])
    foreign = make_client(harness, transport, "origins", {"Origin": EVIL})
    assert "403" in await refused_status(foreign)
    allowed = make_client(harness, transport, "origins", {"Origin": APP})
    await allowed.open()
    await allowed.send("from the app")
    assert await allowed.recv() == "from the app"
    assert len(harness.services["origins"].service) == 1


@pytest_twisted.ensureDeferred
async def test_foreign_origin_cannot_post_into_a_session(harness: Harness) -> None:
    harness.mount("origins", Factory.forProtocol(wire.Echo), allowed_origins=[APP])
    client = await make_client(harness, "xhr-streaming", "origins", {"Origin": APP}).open()
    url = f"{client.session_url}/xhr_send"
    evil = await treq.post(url, data=b'["evil"]', headers={"Origin": EVIL}, pool=harness.pool)
    assert evil.code == 403
    await treq.content(evil)
    await client.send("mine")
    assert await client.recv() == "mine"


# -- the authenticate hook ----------------------------------------------------------------------


def cookie_hook(reactor: Any) -> Any:
    """Admits the cookie ``sid=good`` (later, as a database would), refuses the rest."""

    def decide(request: ConnectRequest) -> Any:
        if request.cookies.get("sid") != "good":
            return None
        return f"user-{request.cookies['sid']}@{request.peer.host}/{request.transportName}"  # type: ignore[attr-defined]

    def hook(request: ConnectRequest) -> Any:
        return deferLater(reactor, 0.01, decide, request)

    return hook


@pytest.mark.parametrize("transport", [*SOCKJS_TRANSPORTS, "raw-websocket"])
@pytest_twisted.ensureDeferred
async def test_async_hook_admits_and_refuses(harness: Harness, transport: str) -> None:
    harness.mount("auth", Factory.forProtocol(Whoami), authenticate=cookie_hook(harness.reactor))
    refused = make_client(harness, transport, "auth", {"Cookie": "sid=bad"})
    assert "403" in await refused_status(refused)
    client = make_client(harness, transport, "auth", {"Cookie": "theme=x; sid=good"})
    await client.open()
    expected = f"user-good@127.0.0.1/{transport}"
    assert json.loads(await client.recv()) == {"principal": expected}
    await client.send("echo")
    assert await client.recv() == "echo"
    assert len(harness.services["auth"].service) == 1


# -- bind_session_to_host ------------------------------------------------------------------------


class OneRequest(Protocol):
    """Sends one raw HTTP request; ``answer`` fires with the status code."""

    def __init__(self, request: bytes):
        self.request = request
        self.data = b""
        self.answer: Any = None

    def connectionMade(self) -> None:
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if b"\r\n\r\n" in self.data and self.answer is not None and not self.answer.called:
            self.answer.callback(int(self.data.split(b" ", 2)[1]))


async def post_from(reactor: Any, port: int, source: str, path: str, body: bytes) -> int:
    """POST ``body`` to ``path`` over a new connection from the address ``source``."""
    from twisted.internet.defer import Deferred

    request = (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\nConnection: close\r\n"
        b"\r\n%s" % (path.encode(), port, len(body), body)
    )
    protocol = OneRequest(request)
    protocol.answer = Deferred()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(source, 0))
    await endpoint.connect(Factory.forProtocol(lambda: protocol))
    try:
        return int(await with_timeout(reactor, protocol.answer))
    finally:
        protocol.transport.loseConnection()


@pytest.mark.parametrize("bound", [True, False])
@pytest_twisted.ensureDeferred
async def test_bind_session_to_host(harness: Harness, bound: bool) -> None:
    harness.mount("bound", Factory.forProtocol(wire.Echo), bind_session_to_host=bound)
    client = await harness.open("xhr-streaming", "bound")
    port = harness.port.getHost().port
    path = f"/bound/000/{client.session_id}/xhr_send"
    # Another host that learnt the session id.
    status = await post_from(harness.reactor, port, "127.0.0.2", path, b'["intruder"]')
    assert status == (404 if bound else 204)
    # The same host over new connections (other ports): always fine.
    for n in range(2):
        assert await post_from(harness.reactor, port, "127.0.0.1", path, b'["own %d"]' % n) == 204
    received = [await client.recv() for _ in range(2 if bound else 3)]
    assert received == (["own 0", "own 1"] if bound else ["intruder", "own 0", "own 1"])


# -- FirstMessageAuth ----------------------------------------------------------------------------


def token_factory(reactor: Any) -> FirstMessageAuth:
    def check(token: str) -> Any:
        return deferLater(reactor, 0.01, lambda: "token-user" if token == "letmein" else None)

    return FirstMessageAuth(Factory.forProtocol(Whoami), check, timeout=5, clock=reactor)


@pytest.mark.parametrize("transport", ["websocket", "xhr-streaming", "xhr-polling"])
@pytest_twisted.ensureDeferred
async def test_first_message_auth(harness: Harness, transport: str) -> None:
    harness.mount("token", token_factory(harness.reactor))
    client = await harness.open(transport, "token")
    await client.send("letmein", "right after the token")
    assert json.loads(await client.recv()) == {"principal": "token-user"}
    assert await client.recv() == "right after the token"
    intruder = await harness.open(transport, "token")
    await intruder.send("guess")
    closed = await intruder.wait_closed()
    assert (closed.code, closed.reason) == (4401, "Unauthorized")
