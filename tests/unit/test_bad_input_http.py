"""
Bad input over HTTP: HEAD requests, over-long server and session ids, request headers too
large to keep, and a body refused while ``Expect: 100-continue`` is pending.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.wire import Echo
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site

from txsockjs import SockJSOptions, SockJSResource
from txsockjs._web.request import body_limited_request

from .conftest import Service
from .fakehttp import Exchange, Response, parse

MakeService = Callable[..., Service]

#: Headers that describe the framing of one answer rather than what it is.
FRAMING_HEADERS = {"date", "transfer-encoding", "content-length", "connection"}

#: GET resources of a SockJS service: the session-opening transports and the fixed pages.
GET_PATHS = [
    "/s/000/abc/eventsource",
    "/s/000/abc/htmlfile?c=cb",
    "/s/000/abc/jsonp?c=cb",
    "/s/info",
    "/s/iframe.html",
    "/s/iframe-1.2.3.html",
    "/s",
    "/s/",
    "/s/no/such/path/here",
]


def head_then(exchange: Exchange, raw: bytes) -> tuple[Response, Response]:
    """
    The answer to the HEAD ``exchange`` was sent with, then the answer to ``raw``, a
    second request on the same connection. A HEAD answer ends with its headers.
    """
    first = exchange.transport.value()
    head, sep, rest = first.partition(b"\r\n\r\n")
    assert sep, f"no answer to HEAD: {first!r}"
    assert rest == b"", f"HEAD answered with a body: {rest[:200]!r}"
    head_response = parse(head + sep, closed=False)
    assert head_response is not None
    exchange.transport.clear()
    exchange.channel.dataReceived(raw)
    second = parse(exchange.transport.value(), exchange.transport.disconnecting)
    assert second is not None, exchange.transport.value()
    return head_response, second


def comparable(response: Response) -> dict[str, list[str]]:
    """The headers of an answer, less those about its framing."""
    return {k: v for k, v in response.headers.items() if k not in FRAMING_HEADERS}


# -- HEAD --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GET_PATHS)
def test_head_answers_headers_only_and_opens_no_session(
    make_service: MakeService, path: str
) -> None:
    service = make_service(jsessionid=True, heartbeat_delay=1, disconnect_delay=1)
    origin = {"Origin": "http://page.example"}
    exchange = service.http.request("HEAD", path, headers=origin)
    head, info = head_then(exchange, b"GET /s/info HTTP/1.1\r\nHost: example.com\r\n\r\n")
    # Nothing was opened, nothing is scheduled, and the connection is in step: the next
    # request on it gets its own complete answer.
    assert service.protocols == []
    assert len(service.resource.service) == 0
    assert service.clock.getDelayedCalls() == []
    assert info.status == 200 and info.complete
    assert info.body.startswith(b'{"websocket":true')
    # The HEAD got what a GET would get, but the body.
    get = service.http.get(path, headers=origin).response
    assert head.status == get.status
    assert comparable(head) == comparable(get)
    # A whole answer's length is told (but /info's, whose entropy changes every time);
    # a transport's answer has none, as its GET is chunked.
    if "content-length" in get.headers and path != "/s/info":
        assert head.header("content-length") == str(len(get.body))
    else:
        assert "content-length" not in head.headers or path == "/s/info"


@pytest.mark.parametrize("path", ["/s/000/abc/eventsource", "/s/000/abc/htmlfile?c=cb"])
def test_head_sends_no_heartbeat(make_service: MakeService, path: str) -> None:
    service = make_service(heartbeat_delay=1, disconnect_delay=1)
    exchange = service.http.request("HEAD", path)
    answered = exchange.transport.value()
    service.clock.pump([0.5] * 10)
    assert exchange.transport.value() == answered
    assert answered.endswith(b"\r\n\r\n") and answered.count(b"HTTP/1.1") == 1


def test_head_on_an_open_session_leaves_it_alone(service: Service) -> None:
    stream = service.http.get("/s/000/abc/eventsource")
    assert stream.response.chunks == [b"\r\n", b"data: o\r\n\r\n"]
    for path in ("/s/000/abc/eventsource", "/s/000/abc/jsonp?c=cb"):
        exchange = service.http.request("HEAD", path)
        response = exchange.response
        assert response.status == 200
        assert exchange.transport.value().endswith(b"\r\n\r\n")
    # The stream is still the session's receiver: no "Another connection still open".
    service.protocol.transport.write(b"still here")  # type: ignore[union-attr]
    service.turn()
    assert stream.response.chunks[2:] == [b'data: a["still here"]\r\n\r\n']


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/s/000/abc/htmlfile", 500),  # no callback
        ("/s/000/abc/jsonp?c=%3Cscript%3E", 500),  # a callback that is refused
        ("/s/000/" + "a" * 65 + "/eventsource", 404),
        ("/s/000/abc/xhr", 405),  # a POST transport
        ("/s/000/abc/xhr_send", 405),
    ],
)
def test_head_errors_are_the_get_errors(service: Service, path: str, status: int) -> None:
    exchange = service.http.request("HEAD", path)
    head, follow = head_then(exchange, b"GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert head.status == status
    assert follow.status == 200 and follow.body == b"Welcome to SockJS!\n"
    assert service.protocols == []


def test_head_when_sessions_are_full_is_503_and_logs_nothing(make_service: MakeService) -> None:
    lines: list[tuple[str, str]] = []
    service = make_service(
        max_sessions=1, log=lambda severity, line: lines.append((severity, line))
    )
    service.http.post("/s/000/one/xhr")
    lines.clear()
    assert service.http.request("HEAD", "/s/000/two/eventsource").response.status == 503
    assert [line for line in lines if line[0] != "debug"] == []
    assert service.http.get("/s/000/two/eventsource").response.status == 503


# -- session ids -------------------------------------------------------------------------------


def test_session_id_length_default() -> None:
    assert SockJSOptions().max_session_id_length == 64


@pytest.mark.parametrize(
    "transport", ["xhr", "xhr_streaming", "eventsource", "htmlfile?c=cb", "jsonp?c=cb"]
)
def test_session_id_over_the_limit_is_404_and_opens_no_session(
    service: Service, transport: str
) -> None:
    method = "POST" if transport.startswith("xhr") else "GET"
    for path in (
        f"/s/000/{'a' * 65}/{transport}",
        f"/s/{'0' * 65}/abc/{transport}",
        f"/s/000/{'a' * 7000}/{transport}",
    ):
        response = service.http.request(method, path).response
        assert response.status == 404, path
        assert response.body == b"404 Error: Page not found\n"
    assert service.protocols == []
    assert len(service.resource.service) == 0
    assert service.clock.getDelayedCalls() == []
    # At the limit, a session opens.
    response = service.http.request(method, f"/s/{'0' * 64}/{'a' * 64}/{transport}").response
    assert response.status == 200
    assert len(service.protocols) == 1


def test_session_id_limit_is_an_option(make_service: MakeService) -> None:
    service = make_service(max_session_id_length=8)
    assert service.http.post("/s/000/abcdefghi/xhr").response.status == 404
    assert service.http.post("/s/000/abcdefgh/xhr").response.frames() == [b"o"]
    assert service.http.send("/s/000/abcdefghi/xhr_send", "x").response.status == 404


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), ("8", TypeError), (8.0, TypeError), (True, TypeError)],
)
def test_session_id_limit_is_validated(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_session_id_length"):
        SockJSOptions.from_kwargs(max_session_id_length=value)


# -- headers kept per session ------------------------------------------------------------------


def opened_headers(service: Service, headers: dict[str, str]) -> dict[str, str]:
    """The ``transport.headers`` of a session opened with ``headers``."""
    service.http.post("/s/000/abc/xhr", headers=headers)
    transport = service.protocol.transport
    return dict(transport.headers)  # type: ignore[union-attr]


def test_header_budget_default() -> None:
    assert SockJSOptions().max_header_bytes == 4096


def test_a_header_too_large_for_the_budget_is_left_out(service: Service) -> None:
    headers = opened_headers(
        service,
        {
            "User-Agent": "U" * 7000,
            "Origin": "http://page.example",
            "Accept-Language": "fr",
            "Referer": "http://page.example/chat",
        },
    )
    assert headers == {
        "host": "example.com",
        "origin": "http://page.example",
        "accept-language": "fr",
        "referer": "http://page.example/chat",
    }


def test_the_budget_counts_names_and_values_in_a_fixed_order(make_service: MakeService) -> None:
    host = len("host") + len("example.com")
    origin = len("origin") + len("http://o")
    agent = len("user-agent") + 20
    service = make_service(max_header_bytes=host + origin + agent)
    headers = opened_headers(
        service,
        # Referer comes first in the request but last in the budget's order.
        {"Referer": "http://r", "Origin": "http://o", "User-Agent": "A" * 20},
    )
    assert headers == {"host": "example.com", "origin": "http://o", "user-agent": "A" * 20}


def test_repeated_headers_are_joined_and_counted_whole(make_service: MakeService) -> None:
    service = make_service(max_header_bytes=len("host") + len("example.com"))
    assert opened_headers(service, {}) == {"host": "example.com"}
    service = make_service()
    raw = (
        b"POST /s/000/abc/xhr HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n"
        b"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n"
    )
    Exchange(service.http.site, raw)
    transport = service.protocol.transport
    assert transport.headers["x-forwarded-for"] == "10.0.0.1, 10.0.0.2"  # type: ignore[union-attr]


def test_a_zero_budget_keeps_no_header(make_service: MakeService) -> None:
    service = make_service(max_header_bytes=0)
    assert opened_headers(service, {"Origin": "http://o"}) == {}


def test_cookies_claim_the_budget_last(make_service: MakeService) -> None:
    base = len("host") + len("example.com") + len("user-agent") + 2
    service = make_service(expose_cookies=True, max_header_bytes=base + len("cookie") + 5)
    assert opened_headers(service, {"User-Agent": "UA", "Cookie": "a=123"}) == {
        "host": "example.com",
        "user-agent": "UA",
        "cookie": "a=123",
    }
    service = make_service(expose_cookies=True, max_header_bytes=base + len("cookie") + 4)
    assert "cookie" not in opened_headers(service, {"User-Agent": "UA", "Cookie": "a=123"})


@pytest.mark.parametrize(("value", "error"), [(-1, ValueError), ("1", TypeError)])
def test_header_budget_is_validated(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_header_bytes"):
        SockJSOptions.from_kwargs(max_header_bytes=value)


# -- Expect: 100-continue ----------------------------------------------------------------------


def limited_channel(limit: int) -> tuple[StringTransport, HTTPChannel]:
    """An HTTP channel of a site that refuses bodies over ``limit`` bytes while they arrive."""
    root = Resource()
    root.putChild(b"s", SockJSResource(Factory.forProtocol(Echo), reactor=Clock()))
    site = Site(root)
    site.requestFactory = body_limited_request(limit)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 1))
    channel = site.buildProtocol(transport.getPeer())
    channel.makeConnection(transport)
    return transport, channel


def test_no_100_continue_after_413() -> None:
    transport, channel = limited_channel(1024)
    channel.dataReceived(
        b"POST /s/000/abc/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    sent = transport.value()
    assert sent.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in sent
    assert sent.count(b"HTTP/1.") == 1
    assert transport.disconnecting


def test_100_continue_for_a_body_within_the_limit() -> None:
    transport, channel = limited_channel(1024)
    channel.dataReceived(
        b"POST /s/000/abc/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    assert transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    channel.dataReceived(b'["x"]'[:4])
    assert transport.value().count(b"HTTP/1.1 ") == 2
