"""
Caps and rates: new sessions per client address, the first-poll deadline, pending sends,
max_sessions; each answered with its documented status and counted in ``refusals``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock

from txsockjs import SockJSOptions
from txsockjs._core.service import (
    FIRST_POLL_DEADLINE,
    MAX_PENDING_SENDS,
    MAX_QUEUED_BYTES,
    MAX_SESSIONS,
    NEW_SESSIONS_RATE,
    REFUSAL_REASONS,
)
from txsockjs._policy.ratelimit import RateLimiter, address_key

from .conftest import Service
from .fakehttp import Exchange
from .test_websocket import HANDSHAKE_HEADERS

MakeService = Callable[..., Service]


def request(
    service: Service,
    method: str,
    path: str,
    peer: str = "192.0.2.1",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Exchange:
    """One request from ``peer`` on its own connection."""
    all_headers = {"Host": "example.com"}
    if method == "POST":
        all_headers["Content-Length"] = str(len(body))
    all_headers.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in all_headers.items()
    )
    return Exchange(service.http.site, head.encode("latin-1") + b"\r\n" + body, peer=peer)


def open_xhr(service: Service, session: str, peer: str = "192.0.2.1", **kwargs: Any) -> Exchange:
    return request(service, "POST", f"/s/000/{session}/xhr", peer, **kwargs)


# -- the token buckets ------------------------------------------------------------------------


def test_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, rate=2.0, burst=3, max_addresses=10)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0, "another key has its own bucket"
    clock.advance(0.5)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)
    clock.advance(1.5)  # the bucket is full again: three in a row
    assert [limiter.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]


def test_refused_takes_do_not_use_tokens_and_peeking_takes_none() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, rate=1.0, burst=1, max_addresses=10)
    assert limiter.take("a", consume=False) == 0.0
    assert limiter.take("a", consume=False) == 0.0
    assert limiter.take("a") == 0.0
    for _ in range(50):
        assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("a", consume=False) == pytest.approx(1.0)
    clock.advance(1.0)
    assert limiter.take("a") == 0.0


def test_idle_buckets_are_forgotten_and_the_table_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, rate=10.0, burst=5, max_addresses=100)
    for n in range(50):
        limiter.take(f"idle{n}")
    assert len(limiter) == 50
    clock.advance(0.1)  # each bucket got its token back: full again
    limiter.take("new")
    assert len(limiter) == 1
    # A flood of distinct addresses, faster than their buckets refill.
    for n in range(100_000):
        limiter.take(f"flood{n}")
        assert len(limiter) <= 100
    assert len(limiter) == 100


def test_a_busy_address_is_not_evicted_by_a_flood_it_outlives() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, rate=1.0, burst=2, max_addresses=10)
    limiter.take("busy")
    limiter.take("busy")
    for n in range(9):
        limiter.take(f"other{n}")
    limiter.take("busy")  # refused, and now the most recently seen
    limiter.take("other-again")  # the table is full: the oldest *other* one goes
    assert limiter.take("busy") > 0


def test_address_keys() -> None:
    assert address_key(IPv4Address("TCP", "203.0.113.9", 1234)) == "203.0.113.9"
    a = address_key(IPv6Address("TCP", "2001:db8:1:2:aaaa::1", 1))
    b = address_key(IPv6Address("TCP", "2001:db8:1:2:bbbb::9", 2))
    assert a == b == "2001:db8:1:2::/64"
    assert address_key(IPv6Address("TCP", "2001:db8:1:3::1", 1)) != a
    assert address_key(IPv6Address("TCP", "::ffff:203.0.113.9", 1)) == "203.0.113.9"
    for loopback in ("127.0.0.1", "127.9.9.9"):
        assert address_key(IPv4Address("TCP", loopback, 1)) is None
    assert address_key(IPv6Address("TCP", "::1", 1)) is None
    assert address_key(IPv6Address("TCP", "fe80::1%eth0", 1)) == "fe80::/64"
    assert address_key(UNIXAddress(b"/run/s.sock")) is None


def test_option_defaults() -> None:
    options = SockJSOptions()
    assert options.new_sessions_per_second == 20.0
    assert options.new_sessions_burst == 100
    assert options.new_sessions_tracked_addresses == 10_000
    assert options.first_poll_deadline == 3.0
    assert options.max_pending_sends == 8
    assert options.drain_timeout == 10.0
    with pytest.raises(ValueError, match="new_sessions_burst must be at least 1"):
        SockJSOptions.from_kwargs(new_sessions_burst=0)
    with pytest.raises(ValueError, match="new_sessions_per_second must be at least 0"):
        SockJSOptions.from_kwargs(new_sessions_per_second=-1)


# -- new sessions per client address -------------------------------------------------------------


def test_new_sessions_beyond_the_rate_get_429_and_others_are_served(
    make_service: MakeService,
) -> None:
    service = make_service(new_sessions_per_second=2, new_sessions_burst=3)
    counts = service.resource.service.refusals
    for n in range(3):
        assert open_xhr(service, f"a{n}").response.body == b"o\n"
    refused = open_xhr(service, "a3").response
    assert refused.status == 429
    assert refused.body == b"Too many new sessions.\n"
    assert refused.header("retry-after") == "1"
    assert counts[NEW_SESSIONS_RATE] == 1
    assert len(service.protocols) == 3
    # Another address has its own bucket; the first one's known sessions are still served.
    assert open_xhr(service, "b0", peer="198.51.100.7").response.body == b"o\n"
    assert not open_xhr(service, "a0").answered(), "a known session is polled, not refused"
    assert counts[NEW_SESSIONS_RATE] == 1
    assert open_xhr(service, "a4").response.status == 429
    assert counts[NEW_SESSIONS_RATE] == 2
    service.clock.advance(0.5)
    assert open_xhr(service, "a5").response.body == b"o\n"
    assert open_xhr(service, "a6").response.status == 429
    assert set(counts) <= set(REFUSAL_REASONS)


def test_retry_after_rounds_up_to_whole_seconds(make_service: MakeService) -> None:
    service = make_service(new_sessions_per_second=0.2, new_sessions_burst=1)
    assert open_xhr(service, "a").response.status == 200
    assert open_xhr(service, "b").response.header("retry-after") == "5"
    service.clock.advance(4.2)
    assert open_xhr(service, "c").response.header("retry-after") == "1"


@pytest.mark.parametrize(
    "method, transport",
    [("GET", "eventsource"), ("GET", "htmlfile?c=cb"), ("GET", "jsonp?c=cb"), ("POST", "xhr")],
)
def test_every_receiving_transport_is_limited(
    make_service: MakeService, method: str, transport: str
) -> None:
    service = make_service(new_sessions_per_second=1, new_sessions_burst=1)
    assert request(service, method, f"/s/000/one/{transport}").response.status == 200
    assert request(service, method, f"/s/000/two/{transport}").response.status == 429
    assert service.resource.service.refusals[NEW_SESSIONS_RATE] == 1


def test_websocket_handshake_beyond_the_rate_gets_429(make_service: MakeService) -> None:
    service = make_service(new_sessions_per_second=1, new_sessions_burst=2)
    first = request(service, "GET", "/s/000/a/websocket", headers=HANDSHAKE_HEADERS)
    raw = request(service, "GET", "/s/websocket", headers=HANDSHAKE_HEADERS)
    assert first.transport.value().startswith(b"HTTP/1.1 101")
    assert raw.transport.value().startswith(b"HTTP/1.1 101")
    refused = request(service, "GET", "/s/000/c/websocket", headers=HANDSHAKE_HEADERS)
    assert refused.response.status == 429
    assert refused.response.header("retry-after") == "1"
    assert b"Upgrade" not in refused.transport.value().split(b"\r\n\r\n")[0]
    assert len(service.protocols) == 2
    assert service.resource.service.refusals[NEW_SESSIONS_RATE] == 1
    for exchange in (first, raw):
        exchange.drop()


def test_head_asks_without_taking_a_token(make_service: MakeService) -> None:
    service = make_service(new_sessions_per_second=1, new_sessions_burst=1)
    for _ in range(3):
        assert request(service, "HEAD", "/s/000/h/eventsource").response.status == 200
    assert open_xhr(service, "a").response.status == 200
    assert request(service, "HEAD", "/s/000/h/eventsource").response.status == 429
    assert service.resource.service.refusals[NEW_SESSIONS_RATE] == 0


def test_the_address_is_taken_after_trusted_proxy_resolution(make_service: MakeService) -> None:
    service = make_service(
        new_sessions_per_second=1, new_sessions_burst=1, trusted_proxies=["10.0.0.0/8"]
    )

    def through_proxy(session: str, client: str) -> int:
        exchange = open_xhr(service, session, "10.1.1.1", headers={"X-Forwarded-For": client})
        return exchange.response.status

    assert through_proxy("a", "203.0.113.1") == 200
    assert through_proxy("b", "203.0.113.2") == 200
    assert through_proxy("c", "203.0.113.1") == 429
    # The proxy itself, not trusted for others, is one more client.
    forwarded = {"X-Forwarded-For": "203.0.113.3"}
    assert open_xhr(service, "d", "192.0.2.50", headers=forwarded).response.status == 200
    assert open_xhr(service, "e", "192.0.2.50").response.status == 429


def test_loopback_clients_are_not_limited(make_service: MakeService) -> None:
    service = make_service(new_sessions_per_second=1, new_sessions_burst=1)
    for n in range(20):
        assert open_xhr(service, f"l{n}", peer="127.0.0.1").response.status == 200
    assert service.resource.service.refusals == {}


def test_zero_rate_turns_the_limit_off(make_service: MakeService) -> None:
    service = make_service(new_sessions_per_second=0, new_sessions_burst=1)
    for n in range(300):
        assert open_xhr(service, f"s{n}").response.status == 200


def test_max_sessions_refusals_are_counted(make_service: MakeService) -> None:
    service = make_service(max_sessions=1)
    assert open_xhr(service, "a").response.status == 200
    refused = open_xhr(service, "b", peer="198.51.100.1").response
    assert (refused.status, refused.body) == (503, b"Too many sessions.\n")
    ws = request(service, "GET", "/s/000/c/websocket", headers=HANDSHAKE_HEADERS)
    assert ws.response.status == 503
    assert service.resource.service.refusals[MAX_SESSIONS] == 2


# -- the first-poll deadline ---------------------------------------------------------------


def test_a_session_whose_client_never_comes_back_closes_at_the_first_poll_deadline(
    make_service: MakeService,
) -> None:
    service = make_service(first_poll_deadline=1.0, disconnect_delay=5.0)
    open_xhr(service, "s")
    service.clock.advance(0.9)
    assert service.protocol.lost == []
    service.clock.advance(0.35)  # within the timer wheel's resolution (0.25 s)
    assert len(service.protocol.lost) == 1
    assert service.protocol.lost[0].check(ConnectionLost)
    assert service.resource.service.refusals[FIRST_POLL_DEADLINE] == 1
    # Forgotten: the id opens a new session.
    assert open_xhr(service, "s").response.body == b"o\n"
    assert len(service.protocols) == 2


def test_a_client_that_comes_back_has_the_whole_disconnect_delay(
    make_service: MakeService,
) -> None:
    service = make_service(first_poll_deadline=1.0, disconnect_delay=5.0)
    open_xhr(service, "s")
    service.clock.advance(0.5)
    service.protocol.transport.write(b"x")  # type: ignore[union-attr]
    assert open_xhr(service, "s").response.body == b'a["x"]\n'
    service.clock.advance(4.5)
    assert service.protocol.lost == []
    service.clock.advance(0.75)
    assert len(service.protocol.lost) == 1
    assert service.resource.service.refusals == {}


def test_the_first_poll_deadline_is_at_most_the_disconnect_delay(
    make_service: MakeService,
) -> None:
    service = make_service(first_poll_deadline=30.0, disconnect_delay=2.0)
    open_xhr(service, "s")
    service.clock.advance(2.2)
    assert len(service.protocol.lost) == 1


def test_a_stream_ended_by_the_response_limit_gets_the_first_poll_deadline(
    make_service: MakeService,
) -> None:
    service = make_service(first_poll_deadline=1.0, response_limit=4096)
    stream = request(service, "POST", "/s/000/s/xhr_streaming")
    service.protocol.transport.write(b"y" * 5000)  # type: ignore[union-attr]
    service.turn()
    assert stream.response.complete
    service.clock.advance(1.3)
    assert len(service.protocol.lost) == 1
    assert service.resource.service.refusals[FIRST_POLL_DEADLINE] == 1


def test_a_closed_session_replaying_its_close_frame_is_not_counted(
    make_service: MakeService,
) -> None:
    service = make_service(first_poll_deadline=1.0)
    open_xhr(service, "s")
    service.protocol.transport.loseConnection()  # type: ignore[union-attr]
    assert open_xhr(service, "s").response.body == b'c[3000,"Go away!"]\n'
    service.clock.advance(10)
    assert service.resource.service.refusals == {}


def test_websocket_sessions_have_no_first_poll_deadline(make_service: MakeService) -> None:
    service = make_service(first_poll_deadline=0.5)
    ws = request(service, "GET", "/s/000/w/websocket", headers=HANDSHAKE_HEADERS)
    service.clock.advance(30)
    assert service.protocol.lost == []
    ws.drop()


# -- pending sends ------------------------------------------------------------------------------


def send(service: Service, session: str, *messages: str) -> Exchange:
    body = json.dumps(list(messages)).encode()
    return request(service, "POST", f"/s/000/{session}/xhr_send", body=body)


def test_sends_beyond_max_pending_sends_get_503(make_service: MakeService) -> None:
    service = make_service(max_pending_sends=3)
    open_xhr(service, "s")
    service.protocol.transport.pauseProducing()  # type: ignore[union-attr]
    held = [send(service, "s", f"m{n}") for n in range(3)]
    assert not any(exchange.answered() for exchange in held)
    refused = send(service, "s", "m3").response
    assert (refused.status, refused.body) == (503, b"Too many sends waiting.\n")
    assert service.resource.service.refusals[MAX_PENDING_SENDS] == 1
    # Another session has its own count.
    open_xhr(service, "t")
    assert send(service, "t", "other").response.status == 204
    service.protocols[0].transport.resumeProducing()  # type: ignore[union-attr]
    assert [exchange.response.status for exchange in held] == [204, 204, 204]
    assert service.protocols[0].received == [b"m0", b"m1", b"m2"]
    assert send(service, "s", "m4").response.status == 204
    assert service.resource.service._pending_sends == {}


def test_pending_sends_are_released_when_the_session_ends(make_service: MakeService) -> None:
    service = make_service(max_pending_sends=2)
    open_xhr(service, "s")
    service.protocol.transport.pauseProducing()  # type: ignore[union-attr]
    held = [send(service, "s", "a"), send(service, "s", "b")]
    service.protocol.transport.abortConnection()  # type: ignore[union-attr]
    assert [exchange.response.status for exchange in held] == [204, 204]
    assert service.resource.service._pending_sends == {}


def test_sends_beyond_max_queued_bytes_are_counted(make_service: MakeService) -> None:
    service = make_service(max_queued_bytes=1024, high_watermark=1024, low_watermark=0)
    open_xhr(service, "s")
    service.protocol.transport.pauseProducing()  # type: ignore[union-attr]
    held = send(service, "s", "x" * 2000)
    refused = send(service, "s", "y").response
    assert (refused.status, refused.body) == (503, b"Too many messages waiting.\n")
    assert service.resource.service.refusals[MAX_QUEUED_BYTES] == 1
    service.protocol.transport.resumeProducing()  # type: ignore[union-attr]
    assert held.response.status == 204
