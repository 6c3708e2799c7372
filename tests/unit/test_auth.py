"""The ``authenticate`` hook, ``bind_session_to_host`` and ``FirstMessageAuth``, in memory."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.web.resource import Resource

from txsockjs import SockJSOptions, SockJSResource
from txsockjs._core.info import host_key
from txsockjs._core.options import parse_text_options
from txsockjs.auth import (
    AUTH_TIMEOUT,
    UNAUTHORIZED,
    ConnectRequest,
    FirstMessageAuth,
    Refused,
)

from .conftest import Recorder, Service
from .fakehttp import Exchange, FakeHTTP
from .test_websocket import HANDSHAKE_HEADERS, Client, frame


class Hook:
    """An ``authenticate`` hook that records what it saw and answers as told."""

    def __init__(self, answer: Any = "alice"):
        self.answer = answer
        self.seen: list[ConnectRequest] = []
        self.pending: list[Deferred[Any]] = []
        self.cancelled = 0

    def cancel(self, d: Deferred[Any]) -> None:
        self.cancelled += 1

    def __call__(self, request: ConnectRequest) -> Any:
        self.seen.append(request)
        if self.answer == "later":
            d: Deferred[Any] = Deferred(self.cancel)
            self.pending.append(d)
            return d
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def request_from(
    service: Service, method: str, path: str, peer: str, headers: dict[str, str] | None = None
) -> Exchange:
    """A request from another client address than FakeHTTP's (10.0.0.1)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: example.com"]
    body = b'["m"]' if path.endswith("_send") else b""
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return Exchange(service.http.site, raw, peer=peer)


# -- the hook sees the opening request -------------------------------------------------------


def test_hook_sees_a_read_only_view_of_the_opening_request(
    make_service: Callable[..., Service],
) -> None:
    hook = Hook()
    service = make_service(authenticate=hook, trusted_proxies=["10.0.0.0/8"])
    opened = service.http.post(
        "/s/000/secretid/xhr_streaming?token=t%C3%A9&x=1&x=2&empty=",
        headers={
            "Cookie": 'session=abc; theme="dark"; session=later',
            "Authorization": "Bearer xyz",
            "Origin": "https://app.example",
            "X-Forwarded-For": "203.0.113.7",
        },
    )
    assert opened.response.status == 200
    [seen] = hook.seen
    assert seen.transportName == "xhr-streaming"
    assert seen.method == "POST"
    assert seen.path == "/s/000/*/xhr_streaming"
    assert "secretid" not in seen.url and seen.url.startswith("/s/000/*/xhr_streaming?")
    assert seen.prefix == "/s"
    assert seen.args == {"token": ("té",), "x": ("1", "2"), "empty": ("",)}
    assert seen.headers["authorization"] == "Bearer xyz"
    assert seen.headers["cookie"] == 'session=abc; theme="dark"; session=later'
    assert seen.cookies == {"session": "abc", "theme": "dark"}
    assert seen.origin == "https://app.example"
    assert seen.peer == IPv4Address("TCP", "203.0.113.7", 0)  # after trusted-proxy resolution
    assert seen.host == IPv4Address("TCP", "127.0.0.1", 8080)
    assert seen.secure is False
    with pytest.raises(TypeError):
        seen.headers["cookie"] = "x"  # type: ignore[index]
    transport: Any = service.protocol.transport
    assert transport.principal == "alice"
    # The protocol's own view still hides cookies (expose_cookies is off).
    assert "cookie" not in transport.headers


def test_hook_is_asked_only_when_a_session_opens(make_service: Callable[..., Service]) -> None:
    hook = Hook()
    service = make_service(authenticate=hook)
    service.http.post("/s/0/a/xhr")
    service.http.send("/s/0/a/xhr_send", "m")
    service.http.post("/s/0/a/xhr")
    service.http.request("HEAD", "/s/0/b/eventsource")
    assert len(hook.seen) == 1
    assert service.protocol.received == [b"m"]


def named_hook(request: ConnectRequest) -> str:
    """An ``authenticate`` hook found by its dotted name."""
    return "by-name"


def test_hook_by_dotted_name(make_service: Callable[..., Service]) -> None:
    options, _ = parse_text_options({"authenticate": f"{__name__}.named_hook"})
    service = make_service(**options)
    service.http.post("/s/0/a/xhr")
    assert service.protocol.transport.principal == "by-name"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="authenticate: cannot import 'no_such_module.hook'"):
        SockJSOptions.from_kwargs(authenticate="no_such_module.hook")
    with pytest.raises(TypeError, match="authenticate must be a callable"):
        SockJSOptions.from_kwargs(authenticate=f"{__name__}.APP_NAME")


APP_NAME = "not callable"


def test_no_hook_principal_is_none(service: Service) -> None:
    service.http.post("/s/0/a/xhr")
    assert service.protocol.transport.principal is None  # type: ignore[union-attr]


@pytest.mark.parametrize("answer", [None, Refused("bad token")])
@pytest.mark.parametrize("path", ["/s/0/a/xhr", "/s/0/a/xhr_streaming", "/s/0/a/eventsource"])
def test_refusal_is_403_and_opens_nothing(
    make_service: Callable[..., Service], answer: Any, path: str
) -> None:
    logged: list[tuple[str, str]] = []
    service = make_service(authenticate=Hook(answer), log=lambda *a: logged.append(a))
    method = "GET" if path.endswith("eventsource") else "POST"
    response = service.http.request(method, path).response
    assert (response.status, response.body) == (403, b"Forbidden.\n")
    assert response.header("content-type") == "text/plain; charset=UTF-8"
    assert service.protocols == []
    assert len(service.resource.service) == 0
    because = ": bad token" if isinstance(answer, Refused) else ""
    assert ("debug", "refusing a session: the authenticate hook refused it" + because) in logged
    # The session id stays free: a later admitted request opens it.
    service.resource.service.options.authenticate.answer = "bob"  # type: ignore[union-attr]
    assert service.http.request(method, path).response.status == 200


def test_hook_that_raises_answers_500(make_service: Callable[..., Service]) -> None:
    logged: list[tuple[str, str]] = []
    service = make_service(
        authenticate=Hook(RuntimeError("database down")), log=lambda *a: logged.append(a)
    )
    response = service.http.post("/s/0/a/xhr").response
    assert (response.status, response.body) == (500, b"Server error.\n")
    assert service.protocols == []
    assert ("error", "the authenticate hook raised; the session is refused") in logged


def test_falsy_principals_are_principals(make_service: Callable[..., Service]) -> None:
    service = make_service(authenticate=Hook(0))
    assert service.http.post("/s/0/a/xhr").response.body == b"o\n"
    assert service.protocol.transport.principal == 0  # type: ignore[union-attr]


# -- a hook that answers later -----------------------------------------------------------------


def test_deferred_hook_holds_the_request_then_opens(make_service: Callable[..., Service]) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    poll = service.http.post("/s/0/a/xhr")
    assert not poll.answered()
    assert service.protocols == []
    hook.pending[0].callback({"user": "carol"})
    assert poll.response.body == b"o\n"
    assert service.protocol.transport.principal == {"user": "carol"}  # type: ignore[union-attr]


def test_deferred_refusal_is_a_complete_403(make_service: Callable[..., Service]) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    poll = service.http.post("/s/0/a/xhr_streaming", headers={"Origin": "https://a.example"})
    hook.pending[0].errback(Refused())
    response = poll.response
    assert (response.status, response.body, response.complete) == (403, b"Forbidden.\n", True)
    assert response.header("content-length") == "11"
    assert response.header("access-control-allow-origin") == "https://a.example"
    assert service.protocols == []


def test_coroutine_hook(make_service: Callable[..., Service]) -> None:
    gate: Deferred[str] = Deferred()

    async def hook(request: ConnectRequest) -> str:
        return await gate

    service = make_service(authenticate=hook)
    poll = service.http.post("/s/0/a/xhr")
    assert not poll.answered()
    gate.callback("dave")
    assert poll.response.body == b"o\n"
    assert service.protocol.transport.principal == "dave"  # type: ignore[union-attr]


def test_client_leaving_cancels_the_hook(make_service: Callable[..., Service]) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    poll = service.http.post("/s/0/a/xhr")
    poll.drop()
    assert hook.cancelled == 1
    assert service.protocols == []
    assert len(service.resource.service) == 0


def test_two_waiting_requests_for_one_id_open_one_session(
    make_service: Callable[..., Service],
) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    first = service.http.post("/s/0/a/xhr")
    second = service.http.post("/s/0/a/xhr")
    hook.pending[0].callback("erin")
    assert first.response.body == b"o\n"
    hook.pending[1].callback("frank")
    assert len(service.protocols) == 1
    assert service.protocol.transport.principal == "erin"  # type: ignore[union-attr]
    assert not second.answered()  # attached to the session, waiting for messages
    service.http.send("/s/0/a/xhr_send", "hi")
    service.turn()
    assert second.response.body == b'a["hi"]\n'


def test_max_sessions_reached_while_waiting(make_service: Callable[..., Service]) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook, max_sessions=1)
    waiting = service.http.post("/s/0/a/xhr")
    hook.answer = "grace"
    service.http.post("/s/0/b/xhr")  # admitted at once, takes the last place
    hook.pending[0].callback("heidi")
    assert (waiting.response.status, waiting.response.body) == (503, b"Too many sessions.\n")
    assert len(service.protocols) == 1


# -- the websocket handshake ---------------------------------------------------------------------


def ws_handshake(service: Service, path: str = "/s/0/a/websocket") -> Exchange:
    return service.http.get(path, headers=HANDSHAKE_HEADERS)


@pytest.mark.parametrize("path", ["/s/0/a/websocket", "/s/websocket"])
def test_websocket_principal(make_service: Callable[..., Service], path: str) -> None:
    hook = Hook("ivan")
    service = make_service(authenticate=hook)
    client = Client(service, path)
    assert service.protocol.transport.principal == "ivan"  # type: ignore[union-attr]
    assert hook.seen[0].transportName == (
        "raw-websocket" if path == "/s/websocket" else "websocket"
    )
    assert hook.seen[0].headers["sec-websocket-key"] == HANDSHAKE_HEADERS["Sec-WebSocket-Key"]
    if path != "/s/websocket":
        assert client.texts() == [b"o"]


@pytest.mark.parametrize("answer", [None, Refused()])
def test_websocket_refusal_is_403_before_the_upgrade(
    make_service: Callable[..., Service], answer: Any
) -> None:
    service = make_service(authenticate=Hook(answer))
    exchange = ws_handshake(service)
    assert exchange.response.status == 403
    assert b"Sec-WebSocket-Accept" not in exchange.transport.value()
    assert service.protocols == []
    assert len(service.resource.service) == 0


def test_websocket_waits_for_a_deferred_hook(make_service: Callable[..., Service]) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    exchange = ws_handshake(service)
    assert exchange.transport.value() == b""
    hook.pending[0].callback("judy")
    head, _, rest = exchange.transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert rest == b"\x81\x01o"  # the open frame
    protocol: Any = exchange.transport.protocol  # type: ignore[attr-defined]
    protocol.dataReceived(frame(b'["hello"]'))
    assert service.protocol.received == [b"hello"]
    assert service.protocol.transport.principal == "judy"  # type: ignore[union-attr]


def test_websocket_deferred_refusal(make_service: Callable[..., Service]) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    exchange = ws_handshake(service)
    hook.pending[0].callback(None)
    response = exchange.response
    assert (response.status, response.body, response.complete) == (403, b"Forbidden.\n", True)
    assert service.protocols == []


def test_websocket_client_leaving_during_the_hook(make_service: Callable[..., Service]) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    exchange = ws_handshake(service)
    exchange.drop()
    assert hook.cancelled == 1
    assert service.protocols == []
    assert len(service.resource.service) == 0


# -- bind_session_to_host ----------------------------------------------------------------------


def test_bound_session_answers_404_to_another_host(make_service: Callable[..., Service]) -> None:
    service = make_service(bind_session_to_host=True)
    service.http.post("/s/0/a/xhr")  # from 10.0.0.1
    assert request_from(service, "POST", "/s/0/a/xhr_send", "10.0.0.2").response.status == 404
    assert request_from(service, "POST", "/s/0/a/xhr", "10.0.0.2").response.status == 404
    assert service.protocol.received == []
    # The same host (on another connection, so another port) may go on.
    assert request_from(service, "POST", "/s/0/a/xhr_send", "10.0.0.1").response.status == 204
    assert service.protocol.received == [b"m"]


def test_binding_compares_hosts_after_trusted_proxies(
    make_service: Callable[..., Service],
) -> None:
    service = make_service(bind_session_to_host=True, trusted_proxies=["10.0.0.0/24"])
    client = {"X-Forwarded-For": "203.0.113.5"}
    request_from(service, "POST", "/s/0/a/xhr", "10.0.0.9", client)
    # Another proxy of the pool, the same client: allowed.
    sent = request_from(service, "POST", "/s/0/a/xhr_send", "10.0.0.10", client)
    assert sent.response.status == 204
    # The same proxy, another client: refused.
    other = {"X-Forwarded-For": "203.0.113.6"}
    refused = request_from(service, "POST", "/s/0/a/xhr_send", "10.0.0.9", other)
    assert refused.response.status == 404
    assert service.protocol.received == [b"m"]


def test_binding_is_off_by_default(service: Service) -> None:
    service.http.post("/s/0/a/xhr")
    assert request_from(service, "POST", "/s/0/a/xhr_send", "10.0.0.2").response.status == 204


def test_host_key_ignores_ports_and_ipv4_mapping() -> None:
    assert host_key(IPv4Address("TCP", "192.0.2.1", 1)) == host_key(
        IPv4Address("TCP", "192.0.2.1", 2)
    )
    assert host_key(IPv6Address("TCP", "::ffff:192.0.2.1", 1)) == "192.0.2.1"
    assert host_key(IPv6Address("TCP", "2001:DB8::1", 1)) == "2001:db8::1"
    assert host_key(UNIXAddress(None)) == host_key(UNIXAddress(None))


# -- FirstMessageAuth -------------------------------------------------------------------------


class Checker:
    def __init__(self, answer: Any = "later"):
        self.answer = answer
        self.tokens: list[str] = []
        self.pending: list[Deferred[Any]] = []
        self.cancelled = 0

    def cancel(self, d: Deferred[Any]) -> None:
        self.cancelled += 1

    def __call__(self, token: str) -> Any:
        self.tokens.append(token)
        if self.answer == "later":
            d: Deferred[Any] = Deferred(self.cancel)
            self.pending.append(d)
            return d
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class Wrapped:
    """A SockJS service whose factory is FirstMessageAuth around a Recorder factory."""

    def __init__(self, checker: Checker, **options: Any):
        self.clock = Clock()
        self.protocols: list[Recorder] = []
        recorder = type("R", (Recorder,), {"instances": self.protocols})
        self.inner = Factory.forProtocol(recorder)
        self.auth = FirstMessageAuth(self.inner, checker, timeout=5, clock=self.clock)
        self.resource = SockJSResource(self.auth, reactor=self.clock, **options)
        root = Resource()
        root.putChild(b"s", self.resource)
        self.http = FakeHTTP(root)

    def poll(self) -> bytes:
        self.clock.advance(0)
        return self.http.post("/s/0/a/xhr").response.body


@pytest.fixture
def wrapped_services() -> Any:
    made: list[Wrapped] = []

    def make(checker: Checker, **options: Any) -> Wrapped:
        made.append(Wrapped(checker, **options))
        return made[-1]

    yield make
    for service in made:
        service.resource.close()
        assert service.clock.getDelayedCalls() == [], "a timer outlived its session"


def test_token_then_wrapped_protocol(wrapped_services: Any) -> None:
    checker = Checker()
    service = wrapped_services(checker)
    assert service.poll() == b"o\n"
    service.http.send("/s/0/a/xhr_send", "my-token", "first", "second")
    assert checker.tokens == ["my-token"]
    assert service.protocols == []
    checker.pending[0].callback("kim")
    [protocol] = service.protocols
    assert protocol.received == [b"first", b"second"]
    assert protocol.transport.principal == "kim"  # type: ignore[union-attr]
    assert service.poll() == b'a["first","second"]\n'
    service.http.send("/s/0/a/xhr_send", "third")
    assert protocol.received == [b"first", b"second", b"third"]


def test_sends_wait_while_the_token_is_checked(wrapped_services: Any) -> None:
    checker = Checker()
    service = wrapped_services(checker)
    service.poll()
    service.http.send("/s/0/a/xhr_send", "token")
    held = service.http.send("/s/0/a/xhr_send", "early")
    assert not held.answered()
    checker.pending[0].callback("lee")
    assert held.response.status == 204
    assert service.protocols[0].received == [b"early"]


@pytest.mark.parametrize("answer", [None, Refused("no"), ValueError("bug")])
def test_refused_token_closes_4401(wrapped_services: Any, answer: Any) -> None:
    service = wrapped_services(Checker(answer))
    service.poll()
    service.http.send("/s/0/a/xhr_send", "bad-token", "more")
    assert service.poll() == b"c%s\n" % json.dumps(list(UNAUTHORIZED)).replace(" ", "").encode()
    assert service.protocols == []


def test_deferred_refusal_closes_4401(wrapped_services: Any) -> None:
    checker = Checker()
    service = wrapped_services(checker)
    service.poll()
    service.http.send("/s/0/a/xhr_send", "bad-token")
    checker.pending[0].errback(Refused())
    assert service.poll() == b'c[4401,"Unauthorized"]\n'


def test_no_token_in_time_closes_4408(wrapped_services: Any) -> None:
    service = wrapped_services(Checker())
    service.poll()
    poll = service.http.post("/s/0/a/xhr")
    service.clock.advance(5)
    service.clock.advance(0)
    assert poll.response.body == b'c[%d,"%s"]\n' % (AUTH_TIMEOUT[0], AUTH_TIMEOUT[1].encode())


def test_check_too_slow_closes_4408_and_is_cancelled(wrapped_services: Any) -> None:
    checker = Checker()
    service = wrapped_services(checker)
    service.poll()
    service.http.send("/s/0/a/xhr_send", "token")
    poll = service.http.post("/s/0/a/xhr")
    service.clock.advance(5)
    assert checker.cancelled == 1
    service.clock.advance(0)
    assert poll.response.body == b'c[4408,"Authentication timeout"]\n'
    assert service.protocols == []


def test_session_gone_during_the_check(wrapped_services: Any) -> None:
    checker = Checker()
    service = wrapped_services(checker)
    service.poll()
    service.http.send("/s/0/a/xhr_send", "token")
    service.clock.advance(60)  # no poll: the session expires
    assert checker.cancelled == 1
    assert service.protocols == []


def test_wrapped_factory_refusing_closes_3003(wrapped_services: Any) -> None:
    checker = Checker("mia")
    service = wrapped_services(checker)
    service.inner.buildProtocol = lambda addr: None  # type: ignore[method-assign]
    service.poll()
    service.http.send("/s/0/a/xhr_send", "token")
    assert service.poll() == b'c[3003,"Connection refused"]\n'


def test_connection_lost_reaches_the_wrapped_protocol(wrapped_services: Any) -> None:
    service = wrapped_services(Checker("nia"))
    service.poll()
    service.http.send("/s/0/a/xhr_send", "token")
    protocol = service.protocols[0]
    protocol.transport.loseConnection()  # type: ignore[union-attr]
    assert service.poll() == b'c[3000,"Go away!"]\n'
    assert len(protocol.lost) == 1


def test_factory_start_and_stop_are_forwarded() -> None:
    calls: list[str] = []

    class Inner(Factory):
        protocol = Protocol

        def startFactory(self) -> None:
            calls.append("start")

        def stopFactory(self) -> None:
            calls.append("stop")

    auth = FirstMessageAuth(Inner(), lambda token: token, clock=Clock())
    auth.doStart()
    auth.doStop()
    assert calls == ["start", "stop"]
    with pytest.raises(TypeError):
        FirstMessageAuth(Inner(), "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FirstMessageAuth(Inner(), lambda token: token, timeout=0)


def test_first_message_over_websocket(wrapped_services: Any) -> None:
    checker = Checker("olga")
    service = wrapped_services(checker)
    client = Client(service)  # type: ignore[arg-type]
    client.send(frame(b'["tok"]'), frame(b'["after"]'))
    assert checker.tokens == ["tok"]
    assert service.protocols[0].received == [b"after"]
    service.clock.advance(0)
    assert client.texts() == [b"o", b'a["after"]']
