"""xhr-polling, xhr_send, jsonp-polling, jsonp_send: one frame per response."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twisted.internet.error import ConnectionDone, ConnectionLost

from .conftest import Service

NO_CACHE = "no-store, no-cache, no-transform, must-revalidate, max-age=0"


def test_open_echo_and_batching(service: Service) -> None:
    opened = service.http.post("/s/000/abc/xhr", headers={"Origin": "test"}).response
    assert opened.status == 200
    assert opened.body == b"o\n"
    assert opened.header("content-type") == "application/javascript; charset=UTF-8"
    assert opened.header("cache-control") == NO_CACHE
    assert opened.header("access-control-allow-origin") == "test"
    sent = service.http.send("/s/000/abc/xhr_send", "a", "b").response
    assert sent.status == 204
    assert sent.header("content-type") == "text/plain; charset=UTF-8"
    assert service.protocol.received == [b"a", b"b"]
    service.turn()
    # The server id is ignored: /999/ reaches the same session.
    assert service.http.post("/s/999/abc/xhr").response.body == b'a["a","b"]\n'


def test_writes_of_one_turn_leave_as_one_frame(service: Service) -> None:
    service.http.post("/s/0/s/xhr")
    poll = service.http.post("/s/0/s/xhr")
    for i in range(8):
        service.protocol.transport.write(b"m%d" % i)  # type: ignore[union-attr]
    assert not poll.answered()
    service.turn()
    assert poll.response.frames() == [b'a["m0","m1","m2","m3","m4","m5","m6","m7"]']


def test_second_receiver_gets_2010_and_first_is_unaffected(service: Service) -> None:
    service.http.post("/s/0/s/xhr")
    first = service.http.post("/s/0/s/xhr")
    second = service.http.post("/s/0/s/xhr")
    assert second.response.body == b'c[2010,"Another connection still open"]\n'
    service.http.send("/s/0/s/xhr_send", "x")
    service.turn()
    assert first.response.body == b'a["x"]\n'


def test_close_frame_is_replayed_then_session_expires(service: Service) -> None:
    service.http.post("/s/0/s/xhr")
    service.protocol.transport.write(b"last")  # type: ignore[union-attr]
    service.protocol.transport.loseConnection()  # type: ignore[union-attr]
    assert service.http.post("/s/0/s/xhr").response.body == b'a["last"]\n'
    assert service.protocol.lost == []
    for _ in range(3):
        assert service.http.post("/s/0/s/xhr").response.body == b'c[3000,"Go away!"]\n'
    assert len(service.protocol.lost) == 1
    assert service.protocol.lost[0].check(ConnectionDone)
    service.clock.advance(5)
    # Forgotten: the id starts a new session.
    assert service.http.post("/s/0/s/xhr").response.body == b"o\n"
    assert len(service.protocols) == 2
    service.protocols[1].transport.abortConnection()  # type: ignore[union-attr]
    service.idle()


def test_messages_wait_for_the_next_poll(service: Service) -> None:
    service.http.post("/s/0/s/xhr")
    service.protocol.transport.write(b"1")  # type: ignore[union-attr]
    service.turn()
    service.protocol.transport.write(b"2")  # type: ignore[union-attr]
    service.turn()
    assert service.http.post("/s/0/s/xhr").response.body == b'a["1","2"]\n'


def test_heartbeat_answers_a_waiting_poll(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(heartbeat_delay=10, disconnect_delay=30)
    service.http.post("/s/0/s/xhr")
    poll = service.http.post("/s/0/s/xhr")
    service.clock.advance(9.9)
    assert not poll.answered()
    service.clock.advance(0.1)
    assert poll.response.body == b"h\n"


def test_timeout_without_receiver_loses_connection_once(
    make_service: Callable[..., Service],
) -> None:
    # disconnect_delay (5 s) alone: the first-poll deadline (test_caps) no shorter than it
    service = make_service(first_poll_deadline=5)
    service.http.post("/s/0/s/xhr")
    service.clock.advance(4.9)
    assert service.protocol.lost == []
    service.clock.advance(0.1)
    assert len(service.protocol.lost) == 1
    assert service.protocol.lost[0].check(ConnectionLost)
    service.clock.advance(100)
    assert len(service.protocol.lost) == 1
    service.idle()


def test_attached_receiver_keeps_session_alive(service: Service) -> None:
    service.http.post("/s/0/s/xhr")
    poll = service.http.post("/s/0/s/xhr")
    service.clock.advance(24)
    assert service.protocol.lost == []
    assert not poll.answered()


def test_client_abort_interrupts_session(service: Service) -> None:
    service.http.post("/s/0/s/xhr")
    poll = service.http.post("/s/0/s/xhr")
    poll.drop()
    assert len(service.protocol.lost) == 1
    assert service.protocol.lost[0].check(ConnectionLost)
    again = service.http.post("/s/0/s/xhr").response.body
    assert again == b'c[1002,"Connection interrupted"]\n'
    service.idle()


@pytest.mark.parametrize(
    ("body", "message"), [(b"", b"Payload expected."), (b'["x', b"Broken JSON encoding.")]
)
def test_bad_send_is_500_and_harms_nothing(service: Service, body: bytes, message: bytes) -> None:
    service.http.post("/s/0/s/xhr")
    response = service.http.post("/s/0/s/xhr_send", body).response
    assert response.status == 500
    assert message in response.body
    assert service.http.send("/s/0/s/xhr_send", "ok").response.status == 204
    assert service.protocol.received == [b"ok"]


def test_send_to_unknown_session_is_404(service: Service) -> None:
    assert service.http.send("/s/0/nope/xhr_send", "x").response.status == 404
    assert service.http.send("/s/0/nope/jsonp_send", "x").response.status == 404
    assert len(service.resource.service) == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "T",
        "application/json",
        "application/xml",
        "",
        "application/json; charset=utf-8",
        "text/xml; charset=utf-8",
    ],
)
def test_xhr_send_accepts_any_content_type(service: Service, content_type: str) -> None:
    service.http.post("/s/0/s/xhr")
    response = service.http.post(
        "/s/0/s/xhr_send", b'["x"]', headers={"Content-Type": content_type}
    ).response
    assert response.status == 204
    assert service.protocol.received == [b"x"]


def test_chunked_send_without_content_length(service: Service) -> None:
    service.http.post("/s/0/s/xhr")
    response = service.http.post("/s/0/s/xhr_send", b'["x"]', chunked=True).response
    assert response.status == 204
    assert service.protocol.received == [b"x"]


def test_jsonp_polling_and_send(service: Service) -> None:
    opened = service.http.get("/s/0/j/jsonp?c=%63allback").response
    assert opened.body == b'/**/callback("o");\r\n'
    assert opened.header("x-content-type-options") == "nosniff"
    form = service.http.post(
        "/s/0/j/jsonp_send",
        b"d=%5B%22x%22%5D",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ).response
    assert (form.status, form.body) == (200, b"ok")
    raw = service.http.post(
        "/s/0/j/jsonp_send", b'["%61bc"]', headers={"Content-Type": "text/plain"}
    ).response
    assert raw.body == b"ok"
    utf8 = service.http.post(
        "/s/0/j/jsonp_send",
        b"d=%5B%22h%C3%A9+%E2%82%AC%22%5D",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    ).response
    assert utf8.body == b"ok"
    assert service.protocol.received == [b"x", b"%61bc", "hé €".encode()]
    service.turn()
    assert service.http.get("/s/0/j/jsonp?c=x").response.body == (
        b'/**/x("a[\\"x\\",\\"%61bc\\",\\"h\\\\u00e9 \\\\u20ac\\"]");\r\n'
    )


@pytest.mark.parametrize("body", [b"d=%5B%22x", b"", b"d=", b"p=p"])
def test_jsonp_send_errors(service: Service, body: bytes) -> None:
    service.http.get("/s/0/j/jsonp?c=x")
    response = service.http.post(
        "/s/0/j/jsonp_send", body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    ).response
    assert response.status == 500


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", b'"callback" parameter required'),
        ("?c=%20", b'invalid "callback" parameter'),
        ("?c=*", b'invalid "callback" parameter'),
        ("?c=abc(", b'invalid "callback" parameter'),
        ("?c=abc%28", b'invalid "callback" parameter'),
        ("?c=" + "a" * 33, b'invalid "callback" parameter'),
    ],
)
@pytest.mark.parametrize("transport", ["jsonp", "htmlfile"])
def test_callback_validation(service: Service, transport: str, query: str, message: bytes) -> None:
    response = service.http.get(f"/s/0/j/{transport}{query}").response
    assert response.status == 500
    assert message in response.body
    assert len(service.resource.service) == 0


def test_jsessionid(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(jsessionid=True)
    fresh = service.http.post("/s/0/s/xhr").response
    assert fresh.header("set-cookie") == "JSESSIONID=dummy; Path=/"
    echoed = service.http.post("/s/0/t/xhr", headers={"Cookie": "JSESSIONID=abcdef"}).response
    assert echoed.header("set-cookie") == "JSESSIONID=abcdef; Path=/"
    assert "set-cookie" not in service.http.get("/s/info").response.headers


def test_jsessionid_hook(make_service) -> None:  # type: ignore[no-untyped-def]
    seen = []

    def hook(request) -> None:  # type: ignore[no-untyped-def]
        seen.append(request.uri)
        request.addCookie(b"SERVERID", b"s1", path=b"/")

    service = make_service(jsessionid=hook)
    assert service.http.post("/s/0/s/xhr").response.header("set-cookie") == "SERVERID=s1; Path=/"
    assert seen == [b"/s/0/s/xhr"]
