"""
The lean request path (txsockjs._web.lean): what a SockJSSite's channels answer themselves
is byte for byte what twisted.web answers (but the Date), on keep-alive connections with
pipelined requests; everything else takes the ordinary path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from txsockjs._web import lean
from txsockjs._web.lean import http_date

from .conftest import Service

MESSAGE = b'["hello"]'
DATE = re.compile(rb"\r\n(Date|Expires): [^\r]*(?=\r\n)")


def raw(
    path: bytes,
    body: bytes = b"",
    method: bytes = b"POST",
    version: bytes = b"HTTP/1.1",
    headers: bytes = b"",
) -> bytes:
    """A request as a client writes it, with Content-Length."""
    return b"%s %s %s\r\nHost: example.com\r\n%sContent-Length: %d\r\n\r\n%s" % (
        method,
        path,
        version,
        headers,
        len(body),
        body,
    )


class _Transport(StringTransport):
    """
    A ``StringTransport`` that, as a TCP transport does, lets go of no producer quietly
    (twisted.web unregisters its channel when it answers 400 and disconnects).
    """

    def unregisterProducer(self) -> None:
        if self.producer is not None:
            super().unregisterProducer()


class Connection:
    """A keep-alive connection to a service's site; counts the Request objects made."""

    def __init__(self, service: Service):
        site = service.http.site
        self.requests = 0
        factory = site.requestFactory
        counter = self

        class Counted(factory):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                counter.requests += 1
                super().__init__(*args, **kwargs)

        site.requestFactory = Counted
        self.transport = _Transport(
            peerAddress=IPv4Address("TCP", "10.0.0.1", 40000),
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
        )
        self.channel = site.buildProtocol(self.transport.getPeer())
        site.requestFactory = factory
        self.transport.protocol = self.channel  # type: ignore[attr-defined]
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        if self.transport.disconnecting:
            return  # the server closed the connection: it reads no more
        self.channel.dataReceived(data)

    def take(self) -> bytes:
        """What was written since the last call, with the Date header masked."""
        data = self.transport.value()
        self.transport.clear()
        return DATE.sub(rb"\r\n\1: -", data)

    def drop(self) -> None:
        self.channel.connectionLost(Failure(ConnectionLost("client left")))


@pytest.fixture
def pair() -> Iterator[tuple[Service, Service]]:
    """The same service on a plain Site (ordinary path) and on a SockJSSite (lean path)."""
    services = (Service(lean=False), Service(lean=True))
    yield services
    for service in services:
        service.resource.close()


def both(pair: tuple[Service, Service], steps: list[bytes]) -> tuple[list[bytes], Connection]:
    """
    Send each of ``steps`` on one connection to each site (opening session ``a`` first on
    its own connection, ``xhr`` polled there); the answers must be the same bytes. Returns
    the answers and the lean site's connection.
    """
    answers = []
    for service in pair:
        opener = Connection(service)
        opener.send(raw(b"/s/0/a/xhr"))
        assert opener.take().endswith(b"o\n\r\n0\r\n\r\n")
        connection = Connection(service)
        got = []
        for step in steps:
            connection.send(step)
            service.turn()
            got.append(connection.take())
        answers.append((got, connection))
    (ordinary, _), (lean_answers, lean_connection) = answers
    assert lean_answers == ordinary
    return lean_answers, lean_connection


@pytest.mark.parametrize(
    "headers",
    [
        b"",
        b"Origin: http://app.example\r\n",
        b"Origin: http://app.example\r\nAccess-Control-Request-Headers: x-a, x-b\r\n",
        b"Connection: keep-alive\r\nContent-Type: text/plain\r\n",
    ],
    ids=["no-origin", "origin", "request-headers", "keep-alive"],
)
def test_answers_are_the_ordinary_bytes(pair: tuple[Service, Service], headers: bytes) -> None:
    answers, connection = both(
        pair,
        [
            raw(b"/s/0/a/xhr_send", MESSAGE, headers=headers),
            raw(b"/s/0/a/xhr", headers=headers),
        ],
    )
    sent, polled = answers
    assert sent.startswith(b"HTTP/1.1 204 No Content\r\nServer: TwistedWeb/")
    assert polled.startswith(b"HTTP/1.1 200 OK\r\n")
    assert polled.endswith(b'\r\n\r\nb\r\na["hello"]\n\r\n0\r\n\r\n')
    assert connection.requests == 0, "both were answered on the lean path"
    assert not connection.transport.disconnecting


FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"


@pytest.mark.parametrize(
    ("send", "poll"),
    [
        (raw(b"/s/0/a/jsonp_send", b"d=" + MESSAGE, headers=FORM), b"/s/0/a/jsonp?c=cb"),
        (raw(b"/s/0/a/jsonp_send", MESSAGE), b"/s/0/a/jsonp?callback=x.y_1&t=2"),
        (raw(b"/s/0/a/jsonp_send", b"d=%5B%22hello%22%5D", headers=FORM), b"/s/0/a/jsonp?c=a&c=b"),
    ],
    ids=["form", "raw-body", "encoded-form"],
)
def test_jsonp_answers_are_the_ordinary_bytes(
    pair: tuple[Service, Service], send: bytes, poll: bytes
) -> None:
    get = b"GET %s HTTP/1.1\r\nHost: example.com\r\n\r\n" % poll
    answers, connection = both(pair, [send, get])
    sent, polled = answers
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and sent.endswith(b"\r\n\r\nok")
    assert b"X-Content-Type-Options: nosniff\r\n" in polled
    assert b'("a[\\"hello\\"]");\r\n' in polled
    assert connection.requests == 0, "both were answered on the lean path"


@pytest.mark.parametrize(
    "query",
    [b"", b"?c=", b"?c=a%62", b"?c=a+b", b"?c=bad-name", b"?callback=", b"?c=a;b"],
    ids=["none", "empty", "percent", "plus", "invalid", "empty-callback", "semicolon"],
)
def test_jsonp_callbacks_the_lean_path_leaves(pair: tuple[Service, Service], query: bytes) -> None:
    get = b"GET /s/0/a/jsonp%s HTTP/1.1\r\nHost: example.com\r\n\r\n" % query
    (answer,), connection = both(pair, [get])
    assert connection.requests == 1


def test_pipelined_sends_are_answered_in_order(pair: tuple[Service, Service]) -> None:
    three = b"".join(raw(b"/s/0/a/xhr_send", b'["%d"]' % i) for i in range(3))
    (answer,), connection = both(pair, [three])
    assert answer.count(b"HTTP/1.1 204 No Content\r\n") == 3
    assert connection.requests == 0
    assert pair[1].protocol.received == [b"0", b"1", b"2"]


def test_a_request_pipelined_behind_a_waiting_poll_waits_for_its_answer(
    pair: tuple[Service, Service],
) -> None:
    service = pair[1]
    Connection(service).send(raw(b"/s/0/a/xhr"))
    connection = Connection(service)
    connection.send(raw(b"/s/0/a/xhr") + raw(b"/s/0/b/xhr"))
    service.turn()
    assert connection.take() == b"", "the poll waits, and the next request behind it"
    sender = Connection(service)
    sender.send(raw(b"/s/0/a/xhr_send", MESSAGE))
    service.turn()
    answers = connection.take()
    # The poll's frame, then the next request: a new session (ordinary path) opened.
    first, second = answers.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.endswith(b'a["hello"]\n\r\n0\r\n\r\n')
    assert second.endswith(b"\r\n2\r\no\n\r\n0\r\n\r\n")
    assert connection.requests == 1


@pytest.mark.parametrize(
    "request_bytes",
    [
        raw(b"/s/0/a/xhr_send", MESSAGE, headers=b"Connection: close\r\n"),
        raw(b"/s/0/a/xhr_send", MESSAGE, version=b"HTTP/1.0"),
        raw(b"/s/0/a/xhr_send", MESSAGE, headers=b"Expect: 100-continue\r\n"),
        raw(b"/s/0/a/xhr_send", MESSAGE, headers=b"X-Folded: a\r\n  b\r\n"),
        raw(b"/s/0/a/xhr_send", MESSAGE, headers=b"Origin: a\r\nOrigin: b\r\n"),
        raw(b"/s/0/a/xhr_send", b'["unterminated'),
        raw(b"/s/0/a/xhr_send", b""),
        raw(b"/s/0/a/xhr", method=b"GET"),
        raw(b"/s/0/a/xhr", method=b"HEAD"),
        raw(b"/s/0/a/xhr", method=b"OPTIONS"),
        raw(b"/s/0/new/xhr"),
        raw(b"/s/0/new/xhr_send", MESSAGE),
        raw(b"/s/0/a/xhr_streaming"),
        raw(b"/s/0/a/unknown"),
        raw(b"/s/0/a.b/xhr"),
        raw(b"/s/0/%61/xhr_send", MESSAGE),
        raw(b"/other/0/a/xhr"),
        raw(b"/s/a/xhr"),
        b"POST /s/0/a/xhr_send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n"
        + MESSAGE
        + b"\r\n0\r\n\r\n",
    ],
    ids=[
        "connection-close",
        "http-1.0",
        "expect",
        "folded-header",
        "two-origins",
        "broken-json",
        "empty-body",
        "get",
        "head",
        "options",
        "new-session",
        "send-to-unknown-session",
        "streaming",
        "unknown-transport",
        "dotted-session",
        "percent-encoded",
        "other-prefix",
        "short-path",
        "chunked",
    ],
)
def test_what_the_lean_path_does_not_take_is_answered_as_before(
    pair: tuple[Service, Service], request_bytes: bytes
) -> None:
    (answer,), connection = both(pair, [request_bytes])
    assert answer.startswith(b"HTTP/1.")
    assert connection.requests == 1


def test_close_and_http10_end_the_connection(pair: tuple[Service, Service]) -> None:
    for extra in ({"headers": b"Connection: close\r\n"}, {"version": b"HTTP/1.0"}):
        connection = Connection(pair[1])
        Connection(pair[1]).send(raw(b"/s/0/a/xhr"))
        connection.send(raw(b"/s/0/a/xhr_send", MESSAGE, **extra))  # type: ignore[arg-type]
        assert connection.transport.disconnecting
        assert b" 204 No Content\r\n" in connection.take()


def test_a_request_split_over_reads_takes_the_ordinary_path(
    pair: tuple[Service, Service],
) -> None:
    service = pair[1]
    Connection(service).send(raw(b"/s/0/a/xhr"))
    connection = Connection(service)
    data = raw(b"/s/0/a/xhr_send", MESSAGE)
    connection.send(data[:30])
    connection.send(data[30:])
    assert connection.take().startswith(b"HTTP/1.1 204 No Content\r\n")
    assert connection.requests == 1
    connection.send(data)
    assert connection.take().startswith(b"HTTP/1.1 204 No Content\r\n")
    assert connection.requests == 1, "the next one, whole, is lean again"


@pytest.mark.parametrize("name", [b"xhr_send", b"jsonp_send"])
def test_a_send_that_waits_is_answered_later_as_before(name: bytes) -> None:
    answers = []
    for site in (False, True):
        service = Service(lean=site, high_watermark=1000, low_watermark=100)
        stream = Connection(service)
        stream.send(raw(b"/s/0/a/xhr_streaming"))
        stream.transport.producer.pauseProducing()  # type: ignore[attr-defined]
        sender = Connection(service)
        sender.send(raw(b"/s/0/a/" + name, b'["%s"]' % (b"x" * 1200)))
        sender.take()
        sender.send(raw(b"/s/0/a/" + name, b'["second"]'))
        assert sender.take() == b"", "over the high watermark: the send waits"
        stream.transport.producer.resumeProducing()  # type: ignore[attr-defined]
        answers.append(sender.take())
        assert sender.requests == (0 if site else 2)
        sender.send(raw(b"/s/0/a/" + name, b'["third"]'))
        assert sender.take().startswith(b"HTTP/1.1 20"), "the connection goes on"
        assert service.protocol.received == [b"x" * 1200, b"second", b"third"]
        service.resource.close()
    assert answers[0] == answers[1]
    assert answers[1].startswith(b"HTTP/1.1 20")


def test_a_poll_whose_client_leaves_interrupts_the_session(
    pair: tuple[Service, Service],
) -> None:
    for service in pair:
        Connection(service).send(raw(b"/s/0/a/xhr"))
        connection = Connection(service)
        connection.send(raw(b"/s/0/a/xhr"))
        assert service.protocol.lost == []
        connection.drop()
        assert len(service.protocol.lost) == 1
        poll = Connection(service)
        poll.send(raw(b"/s/0/a/xhr"))
        assert poll.take().endswith(b'c[1002,"Connection interrupted"]\n\r\n0\r\n\r\n')


def test_a_waiting_poll_gets_the_shutdown_frame_as_before(pair: tuple[Service, Service]) -> None:
    answers = []
    for service in pair:
        Connection(service).send(raw(b"/s/0/a/xhr"))
        connection = Connection(service)
        connection.send(raw(b"/s/0/a/xhr"))
        service.resource.close()
        answers.append(connection.take())
    assert answers[0] == answers[1]
    assert answers[1].endswith(b'\r\n1f\r\nc[1001,"Server shutting down"]\n\r\n0\r\n\r\n')


def test_the_idle_timeout_pauses_while_a_poll_waits(pair: tuple[Service, Service]) -> None:
    service = pair[1]
    site = service.http.site
    clock = site.reactor  # type: ignore[attr-defined]
    Connection(service).send(raw(b"/s/0/a/xhr"))
    connection = Connection(service)
    connection.send(raw(b"/s/0/a/xhr"))
    clock.advance(site.timeOut + 1)
    assert not connection.transport.disconnecting, "a waiting poll is not an idle connection"
    Connection(service).send(raw(b"/s/0/a/xhr_send", MESSAGE))
    service.turn()
    assert b'a["hello"]' in connection.take()
    clock.advance(site.timeOut + 1)
    assert connection.transport.disconnecting, "idle again after the answer"


def test_a_restricted_origin_policy() -> None:
    service = Service(lean=True, allowed_origins=["http://app.example"])
    try:
        Connection(service).send(raw(b"/s/0/a/xhr"))
        allowed = Connection(service)
        allowed.send(raw(b"/s/0/a/xhr_send", MESSAGE, headers=b"Origin: http://app.example\r\n"))
        assert b"Access-Control-Allow-Origin: http://app.example\r\n" in allowed.take()
        assert allowed.requests == 0
        foreign = Connection(service)
        foreign.send(raw(b"/s/0/a/xhr_send", MESSAGE, headers=b"Origin: http://evil.example\r\n"))
        assert foreign.take().startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert foreign.requests == 1
    finally:
        service.resource.close()


def test_http_date_is_formatted_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000_000.25]
    monkeypatch.setattr(lean.time, "time", lambda: now[0])
    first = http_date()
    assert first == b"Sun, 09 Sep 2001 01:46:40 GMT"
    now[0] += 0.5
    assert http_date() is first
    now[0] += 1
    assert http_date() == b"Sun, 09 Sep 2001 01:46:41 GMT"


# -- any request, both paths ---------------------------------------------------------------

_METHODS = st.sampled_from([b"POST", b"GET", b"HEAD", b"OPTIONS", b"PUT", b"post"])
_PATHS = st.sampled_from(
    [
        b"/s/0/a/xhr",
        b"/s/0/a/xhr_send",
        b"/s/0/a/jsonp",
        b"/s/0/a/jsonp_send",
        b"/s/0/a/xhr_streaming",
        b"/s/0/a/bogus",
        b"/s/0/b/xhr_send",
        b"/s/0/a/xhr_send/",
        b"/s//a/xhr_send",
        b"/s/0.x/a/xhr_send",
        b"/s/0/a%2f/xhr_send",
        b"/s/0/" + b"a" * 70 + b"/xhr",
        b"/t/0/a/xhr_send",
        b"s/0/a/xhr_send",
    ]
)
_QUERIES = st.sampled_from([b"", b"?c=cb", b"?c=c%62", b"?c=", b"?x=1", b"?c=a&c=b", b"?c=<x>"])
_HEADER_NAMES = st.sampled_from(
    [
        b"Origin",
        b"origin",
        b"Content-Type",
        b"Connection",
        b"Transfer-Encoding",
        b"Expect",
        b"Upgrade",
        b"Cookie",
        b"X-Any",
        b"Bad Name",
        b"Access-Control-Request-Headers",
    ]
)
_HEADER_VALUES = st.sampled_from(
    [
        b"http://app.example",
        b"null",
        b"close",
        b"keep-alive",
        b"Keep-Alive",
        b"chunked",
        b"100-continue",
        b"application/x-www-form-urlencoded",
        b"text/plain",
        b"",
        b" padded\t",
        b"JSESSIONID=x",
    ]
)
_BODIES = st.one_of(
    st.sampled_from([MESSAGE, b'["a","b"]', b"", b"[", b'"x"', b"d=%5B%22x%22%5D", b"d=", b"[1]"]),
    st.binary(max_size=24),
)


@st.composite
def _requests(draw: st.DrawFn) -> bytes:
    method = draw(_METHODS)
    target = draw(_PATHS) + draw(_QUERIES)
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    headers = b"".join(
        b"%s: %s\r\n" % pair
        for pair in draw(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=3))
    )
    body = draw(_BODIES)
    length = draw(st.sampled_from([len(body), len(body), max(len(body) - 1, 0), None]))
    if length is not None:
        headers += b"Content-Length: %d\r\n" % length
    head = b"%s %s %s\r\nHost: example.com\r\n%s\r\n" % (method, target, version, headers)
    request = head + body
    if draw(st.booleans()):  # a send pipelined behind it, in the same read
        request += raw(b"/s/0/a/xhr_send", b'["next"]')
    return request


#: More examples for a longer search: LEAN_EXAMPLES=5000 python -m pytest tests/unit/test_lean.py
_EXAMPLES = int(os.environ.get("LEAN_EXAMPLES", "300"))


@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests())
def test_any_request_gets_the_same_answer_on_both_paths(request: bytes) -> None:
    """
    Whatever a client sends (shapes the lean path takes and shapes it must leave alone),
    a SockJSSite answers with the bytes a plain Site answers, and a poll afterwards finds
    the session in the same state.
    """
    pair = (Service(lean=False), Service(lean=True))
    try:
        both(pair, [request, raw(b"/s/0/a/xhr")])
    finally:
        for service in pair:
            service.resource.close()
