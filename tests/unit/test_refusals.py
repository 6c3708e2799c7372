"""
Refusals by the origin policy, the ``authenticate`` hook and ``bind_session_to_host``
(issue 12): each is counted in the service's ``refusals`` beside the caps' reasons,
exported as ``sockjs_refusals_total{reason=...}``, and logged once, at debug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.logger import LogEvent, LogLevel, capturedLogs

from txsockjs._core import events as _events
from txsockjs._core import service as _service
from txsockjs.auth import Refused

from .conftest import Service
from .test_auth import Hook, request_from, ws_handshake
from .test_metrics import sample, scrape

APP = "https://app.example.com"
EVIL = "https://evil.example"


@pytest.fixture
def logged() -> Iterator[list[LogEvent]]:
    with capturedLogs() as events:
        yield events  # type: ignore[misc]


def refused_events(events: list[LogEvent]) -> list[LogEvent]:
    return [e for e in events if e.get("sockjs_event") == "refused"]


def refusals(service: Service) -> dict[str, int]:
    return {k: v for k, v in service.resource.service.refusals.items() if v}


def test_reasons_are_declared_and_distinct() -> None:
    reasons = _service.REFUSAL_REASONS
    assert len(set(reasons)) == len(reasons)
    assert {"foreign_origin", "auth_refused", "auth_error", "foreign_host"} <= set(reasons)
    assert {"max_sessions", "new_sessions_rate", "draining"} <= set(reasons)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/s/0/a/xhr"), ("GET", "/s/0/a/eventsource"), ("POST", "/s/0/a/xhr_send")],
)
def test_foreign_origin_counted_and_logged_once(
    make_service: Callable[..., Service], logged: list[LogEvent], method: str, path: str
) -> None:
    hook: list[tuple[str, str]] = []
    service = make_service(allowed_origins=[APP], log=lambda *line: hook.append(line))
    response = service.http.request(method, path, headers={"Origin": EVIL}).response
    assert response.status == 403
    assert refusals(service) == {"foreign_origin": 1}
    [event] = refused_events(logged)
    assert event["log_level"] == LogLevel.debug
    assert event["sockjs_refusal"] == "foreign_origin"
    assert event["sockjs_origin"] == EVIL
    assert event["sockjs_peer"].startswith("10.0.0.1")
    assert hook == [("debug", "refusing a request from a page of a foreign origin")]


def test_foreign_origin_websocket_handshake_counted(make_service: Callable[..., Service]) -> None:
    service = make_service(allowed_origins=[APP])
    for path in ("/s/0/a/websocket", "/s/websocket"):
        exchange = service.http.get(path, headers={**ws_headers(), "Origin": EVIL})
        assert exchange.response.status == 403
    assert refusals(service) == {"foreign_origin": 2}


def ws_headers() -> dict[str, str]:
    from .test_websocket import HANDSHAKE_HEADERS

    return dict(HANDSHAKE_HEADERS)


def test_head_only_asks_and_is_not_counted(
    make_service: Callable[..., Service], logged: list[LogEvent]
) -> None:
    service = make_service(allowed_origins=[APP])
    response = service.http.request("HEAD", "/s/0/a/eventsource", headers={"Origin": EVIL})
    assert response.response.status == 403
    assert refusals(service) == {}
    assert refused_events(logged) == []


def test_allowed_and_absent_origins_are_not_counted(make_service: Callable[..., Service]) -> None:
    service = make_service(allowed_origins=[APP])
    assert service.http.post("/s/0/a/xhr", headers={"Origin": APP}).response.status == 200
    assert service.http.post("/s/0/b/xhr").response.status == 200
    assert refusals(service) == {}


def test_log_field_of_a_hostile_origin_is_printable_and_short(
    make_service: Callable[..., Service], logged: list[LogEvent]
) -> None:
    service = make_service(allowed_origins=[APP])
    service.http.post("/s/0/a/xhr", headers={"Origin": "https://" + "x\x7f" * 300})
    [event] = refused_events(logged)
    origin = event["sockjs_origin"]
    assert origin.isprintable()
    assert len(origin) == 203 and origin.endswith("...")


@pytest.mark.parametrize("answer", [None, Refused("bad token")])
def test_authentication_refusal_counted_and_logged_once(
    make_service: Callable[..., Service], logged: list[LogEvent], answer: Any
) -> None:
    service = make_service(authenticate=Hook(answer))
    assert service.http.post("/s/0/a/xhr").response.status == 403
    assert ws_handshake(service).response.status == 403
    assert refusals(service) == {"auth_refused": 2}
    events = refused_events(logged)
    assert [e["sockjs_refusal"] for e in events] == ["auth_refused", "auth_refused"]
    assert all(e["log_level"] == LogLevel.debug for e in events)
    assert all("sockjs_peer" in e for e in events)


def test_late_authentication_refusal_counted(make_service: Callable[..., Service]) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    polling = service.http.post("/s/0/a/xhr")
    websocket = ws_handshake(service)
    hook.pending[0].callback(None)
    hook.pending[1].errback(Refused())
    assert polling.response.status == 403
    assert websocket.response.status == 403
    assert refusals(service) == {"auth_refused": 2}


def test_client_leaving_during_the_hook_is_not_a_refusal(
    make_service: Callable[..., Service],
) -> None:
    hook = Hook("later")
    service = make_service(authenticate=hook)
    ws_handshake(service).drop()
    assert hook.cancelled == 1
    assert refusals(service) == {}


def test_hook_raising_counted_as_auth_error_and_logged_as_an_error(
    make_service: Callable[..., Service], logged: list[LogEvent]
) -> None:
    service = make_service(authenticate=Hook(RuntimeError("database down")))
    assert service.http.post("/s/0/a/xhr").response.status == 500
    assert refusals(service) == {"auth_error": 1}
    # The error is the one event: no debug "refused" beside it.
    assert refused_events(logged) == []
    assert [e["log_level"] for e in logged if e.get("log_failure")] == [LogLevel.critical]


def test_admitted_sessions_are_not_counted(make_service: Callable[..., Service]) -> None:
    service = make_service(authenticate=Hook("alice"))
    assert service.http.post("/s/0/a/xhr").response.status == 200
    assert refusals(service) == {}


def test_foreign_host_counted_and_logged_with_both_peers(
    make_service: Callable[..., Service], logged: list[LogEvent]
) -> None:
    service = make_service(bind_session_to_host=True)
    service.http.post("/s/0/a/xhr")  # from 10.0.0.1
    assert request_from(service, "POST", "/s/0/a/xhr_send", "10.0.0.2").response.status == 404
    assert request_from(service, "POST", "/s/0/a/xhr", "10.0.0.2").response.status == 404
    assert request_from(service, "POST", "/s/0/a/xhr_send", "10.0.0.1").response.status == 204
    assert refusals(service) == {"foreign_host": 2}
    events = refused_events(logged)
    assert len(events) == 2
    for event in events:
        assert event["sockjs_refusal"] == "foreign_host"
        assert event["log_level"] == LogLevel.debug
        assert event["sockjs_peer"].startswith("10.0.0.1")  # the session's client
        assert event["sockjs_client"].startswith("10.0.0.2")  # the request's
        assert event["sockjs_session"] == _events.session_hash(b"a")


def test_exported_beside_the_caps(make_service: Callable[..., Service]) -> None:
    service = make_service(allowed_origins=[APP], bind_session_to_host=True, max_sessions=1)
    samples = scrape(service)
    for reason in _service.REFUSAL_REASONS:
        assert sample(samples, "sockjs_refusals_total", service="/s", reason=reason) == 0
    service.http.post("/s/0/a/xhr", headers={"Origin": EVIL})
    service.http.post("/s/0/a/xhr")
    request_from(service, "POST", "/s/0/a/xhr", "10.0.0.2")
    service.http.post("/s/0/b/xhr")  # max_sessions
    samples = scrape(service)
    counted = {
        reason: sample(samples, "sockjs_refusals_total", service="/s", reason=reason)
        for reason in _service.REFUSAL_REASONS
    }
    assert {reason: n for reason, n in counted.items() if n} == {
        "foreign_origin": 1,
        "foreign_host": 1,
        "max_sessions": 1,
    }
