"""
Logging (issue 12): one twisted.logger event per occurrence, with a stable name and fields
(a hash of the session id, never the id; the transport; the peer), at the severity the
``log`` hook gets it with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from twisted.application import strports
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.logger import LogEvent, LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.web.server import Site

from txsockjs._core import events as _events
from txsockjs._core.events import EVENTS

from .conftest import Service
from .test_websocket import Client, frame

#: The session id the tests open sessions with: it must never appear in a log.
SECRET_ID = "secret-session-id-4711"


@pytest.fixture
def logged() -> Iterator[Sequence[LogEvent]]:
    """The twisted.logger events of txsockjs emitted during the test."""
    with capturedLogs() as events:
        yield _Ours(events)


class _Ours(Sequence[LogEvent]):
    """Only txsockjs's events (namespace ``txsockjs``)."""

    def __init__(self, events: Sequence[LogEvent]):
        self._events = events

    def _ours(self) -> list[LogEvent]:
        return [e for e in self._events if e.get("log_namespace") == _events.NAMESPACE]

    def __getitem__(self, index: Any) -> Any:
        return self._ours()[index]

    def __len__(self) -> int:
        return len(self._ours())


def named(events: Sequence[LogEvent], name: str) -> list[LogEvent]:
    return [event for event in events if event.get("sockjs_event") == name]


class Hook:
    """A ``log`` option hook that records what it gets."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, severity: str, line: str) -> None:
        self.lines.append((severity, line))


class Raiser(Protocol):
    """Raises on ``raise`` and in ``connectionLost``; writes bad UTF-8 on ``bad``."""

    def dataReceived(self, data: bytes) -> None:
        if data == b"raise":
            raise RuntimeError("application bug")
        if data == b"bad":
            assert self.transport is not None
            self.transport.write(b"\xff")

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        raise ValueError("bug in connectionLost")


def with_protocol(make_service: Callable[..., Service], protocol: type, **options: Any) -> Any:
    service = make_service(**options)
    service.resource.service.factory = Factory.forProtocol(protocol)
    return service


def test_protocol_error_is_one_event_with_its_traceback(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    hook = Hook()
    service = with_protocol(make_service, Raiser, log=hook)
    service.http.post(f"/s/0/{SECRET_ID}/xhr")
    service.http.send(f"/s/0/{SECRET_ID}/xhr_send", "raise")
    [event] = named(logged, "protocol_error")
    assert event["log_level"] == LogLevel.error
    assert event["log_failure"].check(RuntimeError)
    assert event["sockjs_method"] == "dataReceived"
    assert event["sockjs_transport"] == "xhr-polling"
    assert event["sockjs_peer"] == "10.0.0.1:40000"
    assert re.fullmatch("[0-9a-f]{8}", event["sockjs_session"])
    assert formatEvent(event) == (
        f"protocol_error session={event['sockjs_session']} transport=xhr-polling "
        "peer=10.0.0.1:40000 method=dataReceived: the protocol raised: "
        "RuntimeError: application bug"
    )
    # The hook gets the same occurrence once, as the same line.
    errors = [line for severity, line in hook.lines if severity == "error"]
    assert errors == [formatEvent(event)]
    # Nothing else was logged at error: no second copy of it.
    assert [e["sockjs_event"] for e in logged if e["log_level"] >= LogLevel.warn] == [
        "protocol_error"
    ]


def test_connection_lost_and_connection_made_errors(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    class RaisesOnOpen(Raiser):
        def connectionMade(self) -> None:
            raise KeyError("no")

    service = with_protocol(make_service, RaisesOnOpen)
    service.http.post("/s/0/a/xhr")
    service.turn()
    service.http.post("/s/0/a/xhr")  # takes the close frame: connectionLost raises
    methods = [e["sockjs_method"] for e in named(logged, "protocol_error")]
    assert methods == ["connectionMade", "connectionLost"]
    [closed] = named(logged, "session_closed")
    assert closed["sockjs_reason"] == "server_error"


def test_invalid_utf8_is_one_error_event(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    class BadWriter(Protocol):
        def dataReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(b"\xff")

    hook = Hook()
    service = with_protocol(make_service, BadWriter, log=hook)
    client = Client(service)
    client.send(frame(b'["x"]'))
    [event] = named(logged, "invalid_utf8")
    assert event["log_level"] == LogLevel.error
    assert event["sockjs_transport"] == "websocket"
    assert event["sockjs_session"].startswith("ws-")
    assert "invalid start byte" in event["sockjs_error"]
    assert [severity for severity, _ in hook.lines].count("error") == 1
    assert len([e for e in logged if e["log_level"] == LogLevel.error]) == 1


def test_session_events_are_debug_and_never_show_the_id(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    hook = Hook()
    service = make_service(log=hook)
    service.http.post(f"/s/0/{SECRET_ID}/xhr")
    service.http.send(f"/s/0/{SECRET_ID}/xhr_send", "hello")
    service.turn()
    service.http.post(f"/s/0/{SECRET_ID}/xhr")
    service.clock.advance(3600)  # no poll: the session times out
    [opened] = named(logged, "session_opened")
    [closed] = named(logged, "session_closed")
    for event in (opened, closed):
        assert event["log_level"] == LogLevel.debug
        assert event["log_namespace"] == "txsockjs"
    assert opened["sockjs_session"] == closed["sockjs_session"]
    assert opened["sockjs_session"] == _events.session_hash(SECRET_ID.encode())
    assert closed["sockjs_reason"] == "timeout"
    assert formatEvent(closed) == (
        f"session_closed session={closed['sockjs_session']} transport=xhr-polling "
        "peer=10.0.0.1:40000 reason=timeout"
    )
    # The hook got each event, at its severity, as the same line.
    assert ("debug", formatEvent(opened)) in hook.lines
    assert ("debug", formatEvent(closed)) in hook.lines
    # The id is nowhere: not in a line, not in a field.
    for event in logged:
        assert SECRET_ID not in formatEvent(event)
        assert not any(SECRET_ID in str(value) for value in event.values())
    assert not any(SECRET_ID in line for _, line in hook.lines)


def test_session_hash_is_keyed_per_process() -> None:
    import hashlib

    one = _events.session_hash(b"abc")
    assert one == _events.session_hash(b"abc") != _events.session_hash(b"abd")
    assert one != hashlib.blake2b(b"abc", digest_size=4).hexdigest()


def test_refused_requests_are_debug(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    hook = Hook()
    service = make_service(max_sessions=1, log=hook)
    service.http.post("/s/0/a/xhr")
    refused = service.http.post("/s/0/b/xhr").response
    assert refused.status == 503
    events = named(logged, "refused")
    assert [e["sockjs_refusal"] for e in events] == ["max_sessions"]
    assert all(e["log_level"] == LogLevel.debug for e in events)
    assert not [e for e in logged if e["log_level"] >= LogLevel.info]
    assert all(severity == "debug" for severity, _ in hook.lines)


def test_factory_refusing_or_raising(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    class Refusing(Factory):
        def buildProtocol(self, addr: Any) -> None:
            return None

    class Raising(Factory):
        def buildProtocol(self, addr: Any) -> None:
            raise OSError("no protocol today")

    service = make_service()
    service.resource.service.factory = Refusing()
    assert service.http.post("/s/0/a/xhr").response.body == b"o\n"
    assert service.http.post("/s/0/a/xhr").response.body == b'c[3003,"Connection refused"]\n'
    service.resource.service.factory = Raising()
    service.http.post("/s/0/b/xhr")
    [refused] = named(logged, "session_refused")
    assert refused["log_level"] == LogLevel.debug
    [raised] = named(logged, "factory_error")
    assert raised["log_level"] == LogLevel.error
    assert raised["log_failure"].check(OSError)
    # Neither session was opened, so neither is logged opened or closed.
    assert named(logged, "session_opened") == named(logged, "session_closed") == []


def test_send_buffer_full_and_liveness_timeout_are_info(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    service = make_service(max_queued_bytes=1000, high_watermark=100, low_watermark=50)
    service.http.post("/s/0/a/xhr")
    for _ in range(3):
        service.protocol.transport.write(b"x" * 600)  # type: ignore[union-attr]
    [full] = named(logged, "send_buffer_full")
    assert full["log_level"] == LogLevel.info
    assert full["sockjs_limit"] == 1000
    client = Client(service)
    session = client.protocol.session
    service.resource.service.liveness_timeout(session)
    [dead] = named(logged, "liveness_timeout")
    assert (dead["log_level"], dead["sockjs_transport"]) == (LogLevel.info, "websocket")
    assert service.resource.service.stats["websocket"].liveness_timeouts == 1


def test_free_text_lines_reach_the_hook_unchanged(logged: Sequence[LogEvent]) -> None:
    hook = Hook()
    _events.emit_message("info", "draining {3} sessions", hook, sockjs_count=3)
    [event] = logged
    assert event["sockjs_event"] == "message"
    assert event["log_level"] == LogLevel.info
    assert formatEvent(event) == "message count=3: draining {3} sessions"
    assert hook.lines == [("info", "draining {3} sessions")]


def test_every_event_is_named_in_the_catalogue(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    service = with_protocol(make_service, Raiser)
    client = Client(service)
    client.send(frame(b'["raise"]'))
    service.http.post("/s/0/a/xhr")
    service.http.send("/s/0/a/xhr_send", "bad")
    service.resource.close()
    names = {event["sockjs_event"] for event in logged}
    assert names >= {"session_opened", "session_closed", "protocol_error", "invalid_utf8"}
    assert names <= set(EVENTS)


@pytest.mark.parametrize(
    ("address", "peer", "url"),
    [
        (IPv4Address("TCP", "10.0.0.1", 80), "10.0.0.1:80", "http://10.0.0.1:80"),
        (IPv4Address("TCP", "10.0.0.1", 0), "10.0.0.1", "http://10.0.0.1:0"),
        (IPv6Address("TCP", "::1", 8443), "[::1]:8443", "http://[::1]:8443"),
        (UNIXAddress(b"/run/s.sock"), "unix:/run/s.sock", "http+unix://%2Frun%2Fs.sock"),
    ],
)
def test_addresses(address: Any, peer: str, url: str) -> None:
    assert _events.peer_text(address) == peer
    assert _events.base_url(address) == url


def test_startup_urls_one_event_each(logged: Sequence[LogEvent]) -> None:
    reactor = MemoryReactor()
    listening = strports.service("tcp:8080:interface=127.0.0.1", Site(None), reactor=reactor)
    listening.startService()
    _events.log_serving([listening], [("SockJS service", "/echo"), ("demo page", "/")])
    events = named(logged, "serving")
    # MemoryReactor's ports report 0.0.0.0 whatever the interface.
    assert [formatEvent(e) for e in events] == [
        "serving: SockJS service at http://0.0.0.0:8080/echo",
        "serving: demo page at http://0.0.0.0:8080/",
    ]
    assert all(e["log_level"] == LogLevel.info for e in events)
    listening.stopService()


def test_serving_log_service_after_the_listeners(logged: Sequence[LogEvent]) -> None:
    from twisted.application.service import MultiService

    reactor = MemoryReactor()
    parent = MultiService()
    for description in ("tcp:8080", "tcp:8081"):
        strports.service(description, Site(None), reactor=reactor).setServiceParent(parent)
    parent.addService(_events.ServingLog(list(parent), [("metrics", "/metrics")]))
    parent.startService()
    assert [e["sockjs_url"] for e in named(logged, "serving")] == [
        "http://0.0.0.0:8080/metrics",
        "http://0.0.0.0:8081/metrics",
    ]
    parent.stopService()


def test_tls_urls() -> None:
    assert _events.base_url(IPv4Address("TCP", "1.2.3.4", 443), tls=True) == "https://1.2.3.4:443"


# -- the level of the txsockjs events (twistd sockjs --log-level) -------------------------------


def test_log_level_default_and_bad_names() -> None:
    assert _events.log_level() == "debug"
    for severity in ("info", "error", "debug"):
        _events.set_log_level(severity)
        assert _events.log_level() == severity
    with pytest.raises(ValueError, match="trace"):
        _events.set_log_level("trace")
    assert _events.log_level() == "debug"


class _Counting:
    """Stands in for the events' Logger: counts the events made."""

    def __init__(self) -> None:
        self.made: list[LogLevel] = []

    def emit(self, level: LogLevel, format: str, **fields: Any) -> None:
        self.made.append(level)

    def failure(self, format: str, failure: Failure, level: LogLevel, **fields: Any) -> None:
        self.made.append(level)


def _open_and_time_out(service: Service) -> None:
    """A session opened, polled again, then let time out: two debug events."""
    service.http.post("/s/0/a/xhr")
    service.http.send("/s/0/a/xhr_send", "hello")
    service.turn()
    service.http.post("/s/0/a/xhr")
    service.clock.advance(3600)


def test_debug_events_below_the_level_are_not_even_made(
    make_service: Callable[..., Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = _Counting()
    monkeypatch.setattr(_events, "_log", counting)
    service = make_service()
    _open_and_time_out(service)
    assert counting.made == [LogLevel.debug, LogLevel.debug]  # opened, closed
    _events.set_log_level("info")
    counting.made.clear()
    formats = dict(_events._FORMATS)
    contexts: list[Any] = []
    context = _events.session_context
    monkeypatch.setattr(
        _events, "session_context", lambda session: contexts.append(session) or context(session)
    )
    _open_and_time_out(service)
    assert counting.made == []
    # Not formatted either: no format was made or looked up, no field (a hash) computed.
    assert _events._FORMATS == formats
    assert contexts == []
    _events.emit(_events.SEND_BUFFER_FULL, None)
    _events.set_log_level("error")
    _events.emit(_events.SEND_BUFFER_FULL, None)
    _events.emit(_events.PROTOCOL_ERROR, None, Failure(RuntimeError("x")))
    assert counting.made == [LogLevel.info, LogLevel.error]


def test_the_hook_gets_every_event_whatever_the_level(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    at_debug, at_info = Hook(), Hook()
    _open_and_time_out(make_service(log=at_debug))
    assert len(named(logged, "session_opened")) == 1
    _events.set_log_level("info")
    _open_and_time_out(make_service(log=at_info))
    # twisted.logger saw the second session neither opened nor closed ...
    assert len(named(logged, "session_opened")) == len(named(logged, "session_closed")) == 1
    # ... the hook saw both sessions alike (their hashes differ: the same id, one per line).
    assert [severity for severity, _ in at_info.lines] == ["debug", "debug"]
    assert [line.split()[0] for _, line in at_info.lines] == ["session_opened", "session_closed"]
    assert [line.split()[0] for _, line in at_debug.lines] == ["session_opened", "session_closed"]


def test_refusals_below_the_level_reach_only_the_hook(
    make_service: Callable[..., Service], logged: Sequence[LogEvent]
) -> None:
    _events.set_log_level("info")
    hook = Hook()
    service = make_service(max_sessions=1, log=hook)
    service.http.post("/s/0/a/xhr")
    assert service.http.post("/s/0/b/xhr").response.status == 503
    assert named(logged, "refused") == []
    assert hook.lines[-1] == ("debug", "refusing a new session: max_sessions")


def test_the_level_filters_every_txsockjs_logger(logged: Sequence[LogEvent]) -> None:
    from twisted.logger import Logger

    from txsockjs import redis

    assert redis._log.observer is _events.OBSERVER
    own = Logger(namespace="txsockjs.redis", observer=_events.OBSERVER)
    with capturedLogs() as everything:
        _events.set_log_level("error")
        own.info("dropped")
        own.warn("dropped too")
        own.error("kept")
        Logger(namespace="elsewhere", observer=_events.OBSERVER).debug("not ours: kept")
        _events.set_log_level("debug")
        own.debug("kept again")
    assert [e["log_format"] for e in everything] == ["kept", "not ours: kept", "kept again"]


def test_no_url_when_listening_fails_later(logged: Sequence[LogEvent]) -> None:
    """An endpoint that fails to listen after ``startService``: the error, and no URL."""
    from twisted.application.internet import StreamServerEndpointService
    from twisted.application.service import MultiService
    from twisted.internet.defer import Deferred
    from twisted.internet.error import CannotListenError

    class Later:
        def __init__(self) -> None:
            self.waiting: Deferred[Any] = Deferred()

        def listen(self, factory: Any) -> Deferred[Any]:
            return self.waiting

    endpoint = Later()
    parent = MultiService()
    listening = StreamServerEndpointService(endpoint, Site(None))
    listening.setServiceParent(parent)
    parent.addService(_events.ServingLog(list(parent), [("demo page", "/")]))
    parent.startService()
    endpoint.waiting.errback(CannotListenError("", 8080, OSError("in use")))
    # Twisted logged the error and left None; announcing the URLs raised nothing after it.
    outcome: list[Any] = []
    listening._waitingForPort.addBoth(outcome.append)
    assert outcome == [None]
    assert named(logged, "serving") == []
