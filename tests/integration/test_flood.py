"""
A flood of new sessions from one client address does not deny service to the others.

A real server on 127.0.0.1 believes ``X-Forwarded-For`` from 127.0.0.1 (``trusted_proxies``),
so that clients on this host can stand for different addresses. One of them opens sessions
as fast as it can (a bounded number of requests, several at a time); meanwhile another opens
sessions of its own and echoes over them, and over a websocket opened before the flood.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from typing import Any

import pytest_twisted
import treq
from autobahn.twisted.websocket import WebSocketClientFactory
from treq.client import HTTPClient
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory
from twisted.protocols import wire
from twisted.web.client import Agent, HTTPConnectionPool

from txsockjs._core.service import NEW_SESSIONS_RATE

from .clients import TIMEOUT, WebSocketClient, _WebSocketProtocol, with_timeout
from .servers import Harness, report

FLOODER = "203.0.113.66"
VICTIM = "198.51.100.20"
RATE = 20.0
BURST = 20
#: Requests of the flood, and how many are in flight at once.
FLOOD_REQUESTS = 2000
FLOOD_CONCURRENCY = 16
#: New sessions the victim opens during the flood (under its own burst).
VICTIM_ROUNDS = 10


class ForwardedWebSocketClient(WebSocketClient):
    """A SockJS websocket client whose handshake says ``X-Forwarded-For: forwarded_for``."""

    def __init__(self, *args: Any, forwarded_for: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.forwarded_for = forwarded_for

    async def connect(self, timeout: float = TIMEOUT) -> None:
        url = self.ws_url()
        parsed = urllib.parse.urlparse(url)
        factory = WebSocketClientFactory(url, headers={"X-Forwarded-For": self.forwarded_for})
        factory.protocol = _WebSocketProtocol
        factory.client = self
        endpoint = TCP4ClientEndpoint(self.reactor, parsed.hostname, parsed.port, timeout=5)
        self.protocol = await with_timeout(self.reactor, endpoint.connect(factory), timeout)
        await with_timeout(self.reactor, self._opened, timeout)


async def post(http: HTTPClient, url: str, forwarded_for: str, body: bytes = b"") -> Any:
    """POST ``body`` as a client at ``forwarded_for``; (status, body, headers)."""
    response = await http.post(
        url,
        data=body,
        headers={b"X-Forwarded-For": [forwarded_for.encode()]},
    )
    content = await treq.content(response)
    return response.code, content, response.headers


@pytest_twisted.ensureDeferred
async def test_a_flood_of_new_sessions_does_not_deny_service_to_others(
    harness: Harness, reactor: Any
) -> None:
    resource = harness.mount(
        "guarded",
        Factory.forProtocol(wire.Echo),
        trusted_proxies=["127.0.0.1"],
        new_sessions_per_second=RATE,
        new_sessions_burst=BURST,
    )
    base = harness.url("guarded")
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = FLOOD_CONCURRENCY
    http = HTTPClient(Agent(reactor, pool=pool))

    # The victim's websocket, open before the flood.
    ws = ForwardedWebSocketClient(reactor, harness.http, base, forwarded_for=VICTIM)
    harness.clients.append(ws)
    await ws.open()

    statuses: dict[int, int] = {}
    retry_after: set[bytes] = set()
    flood_left = FLOOD_REQUESTS
    flood_running = True

    async def flood_worker() -> None:
        nonlocal flood_left
        while flood_left > 0:
            flood_left -= 1
            url = f"{base}/000/{uuid.uuid4().hex}/xhr"
            code, _, headers = await post(http, url, FLOODER)
            statuses[code] = statuses.get(code, 0) + 1
            if code == 429:
                retry_after.update(headers.getRawHeaders(b"retry-after") or [])

    async def flood() -> float:
        nonlocal flood_running
        started = time.monotonic()
        try:
            workers = [flood_worker() for _ in range(FLOOD_CONCURRENCY)]
            await gatherResults([Deferred.fromCoroutine(w) for w in workers])
        finally:
            flood_running = False
        return time.monotonic() - started

    latencies: list[float] = []
    during_flood = 0

    async def victim() -> None:
        nonlocal during_flood
        for n in range(VICTIM_ROUNDS):
            started = time.monotonic()
            session = f"{base}/000/{uuid.uuid4().hex}"
            code, body, _ = await post(http, f"{session}/xhr", VICTIM)
            assert (code, body) == (200, b"o\n"), f"the victim's session {n} was refused: {code}"
            message = f"round {n}"
            code, body, _ = await post(
                http, f"{session}/xhr_send", VICTIM, json.dumps([message]).encode()
            )
            assert code == 204, (code, body)
            code, body, _ = await post(http, f"{session}/xhr", VICTIM)
            assert (code, body) == (200, b'a["%s"]\n' % message.encode()), (code, body)
            await ws.send(message)
            assert await ws.recv() == message
            latencies.append(time.monotonic() - started)
            if flood_running:
                during_flood += 1

    flood_d = Deferred.fromCoroutine(flood())
    await with_timeout(reactor, Deferred.fromCoroutine(victim()), 60)
    elapsed = await with_timeout(reactor, flood_d, 120)
    await pool.closeCachedConnections()

    accepted = statuses.get(200, 0)
    refused = statuses.get(429, 0)
    report(
        f"flood of {FLOOD_REQUESTS} new sessions from one address in {elapsed:.2f} s: "
        f"{accepted} accepted, {refused} refused with 429; the victim's {len(latencies)} "
        f"rounds (new session, echo over it and over a websocket): slowest "
        f"{max(latencies) * 1000:.0f} ms, {during_flood} during the flood"
    )
    assert set(statuses) <= {200, 429}, statuses
    assert accepted + refused == FLOOD_REQUESTS
    # The bucket: BURST at once, then RATE per second (one more for rounding).
    assert accepted <= BURST + RATE * elapsed + 1, (accepted, elapsed)
    assert refused >= FLOOD_REQUESTS - BURST - RATE * elapsed - 1
    assert resource.service.refusals[NEW_SESSIONS_RATE] == refused
    assert retry_after and all(int(value) >= 1 for value in retry_after)
    assert len(latencies) == VICTIM_ROUNDS
    assert during_flood >= 1, "the victim's rounds all ended after the flood: no overlap"
