"""The ``allowed_origins`` policy: matching, CORS answers, refusals, switched-off transports."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from txsockjs import SockJSOptions
from txsockjs._core.options import option_specs, parse_text_options
from txsockjs._policy.origin import ANY_ORIGIN, OriginPolicy, parse_origin

from .conftest import Service
from .fakehttp import Exchange
from .test_websocket import HANDSHAKE_HEADERS

APP = "https://app.example.com"
RESTRICTED = {"allowed_origins": [APP, "https://*.example.org", "http://localhost:*"]}


# -- the policy itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("HTTPS://APP.Example.COM", True),
        ("https://app.example.com:443", True),  # the default port, written out
        ("https://app.example.com:8443", False),
        ("http://app.example.com", False),
        ("https://app.example.com.evil.net", False),
        ("https://evilapp.example.com", False),
        ("https://a.example.org", True),
        ("https://a.b.example.org", True),
        ("https://example.org", False),  # the wildcard needs a subdomain
        ("https://evilexample.org", False),
        ("http://a.example.org", False),
        ("http://localhost", True),
        ("http://localhost:5173", True),
        ("https://localhost:5173", False),
        ("null", False),
        ("", False),
        ("https://app.example.com/path", False),
        ("not an origin", False),
    ],
)
def test_patterns(origin: str, allowed: bool) -> None:
    policy = OriginPolicy.from_value(RESTRICTED["allowed_origins"])
    assert policy.restricted
    assert policy.allows(origin) is allowed


def test_null_only_when_listed_and_never_by_wildcard() -> None:
    assert not OriginPolicy(["https://*.example.com"]).allows("null")
    listed = OriginPolicy(["null", "https://a.example.com"])
    assert listed.allows("null")
    assert listed.allows("https://a.example.com")
    assert not listed.allows("https://b.example.com")


def test_ipv6_literal_and_other_schemes() -> None:
    policy = OriginPolicy(["http://[::1]:8080", "chrome-extension://abcdefgh"])
    assert policy.allows("http://[::1]:8080")
    assert not policy.allows("http://[::2]:8080")
    assert policy.allows("chrome-extension://abcdefgh")


@pytest.mark.parametrize("value", [None, (), [], "*", ["*"], ["https://a.example", "*"]])
def test_any_origin(value: Any) -> None:
    policy = OriginPolicy.from_value(value)
    assert not policy.restricted
    assert policy == ANY_ORIGIN
    assert policy.allows("https://anything.example") and policy.allows("null")


@pytest.mark.parametrize(
    "pattern",
    [
        "app.example.com",
        "https://app.example.com/app",
        "https://*",
        "https://*.[::1]",
        "https://app.exämple.com",
        "https://app.example.com:port",
        "https://a.*.example.com",
    ],
)
def test_bad_patterns_are_refused_when_the_service_is_made(pattern: str) -> None:
    with pytest.raises(ValueError, match="allowed_origins"):
        SockJSOptions.from_kwargs(allowed_origins=[pattern])


def test_bad_types() -> None:
    with pytest.raises(TypeError, match="allowed_origins"):
        SockJSOptions.from_kwargs(allowed_origins=42)
    with pytest.raises(TypeError, match="allowed_origins"):
        SockJSOptions.from_kwargs(allowed_origins=[b"https://a.example"])


def test_callable_policy_sees_the_origin_and_a_raise_refuses() -> None:
    seen: list[str] = []

    def check(origin: str) -> bool:
        seen.append(origin)
        if origin == "boom":
            raise RuntimeError("bug in the check")
        return origin.endswith(".trusted.example")

    policy = OriginPolicy.from_value(check)
    assert policy.restricted
    assert policy.allows("https://x.trusted.example")
    assert not policy.allows("null")
    assert not policy.allows("boom")
    assert seen == ["https://x.trusted.example", "null", "boom"]


def test_verdicts_are_remembered_within_a_bound() -> None:
    policy = OriginPolicy(["https://*.example.com"])
    for n in range(3000):
        assert policy.allows(f"https://h{n}.example.com")
        assert not policy.allows(f"https://h{n}.example.net")
    assert len(policy._known) <= 1024
    assert policy.allows("https://h1.example.com") and not policy.allows("null")


def test_parse_origin() -> None:
    assert parse_origin("https://A.example") == ("https", "a.example", 443)
    assert parse_origin("http://a.example:8080") == ("http", "a.example", 8080)
    assert parse_origin("null") is None


# -- as an option -------------------------------------------------------------------------------


def test_option_default_flag_and_endpoint_value() -> None:
    assert SockJSOptions().allowed_origins == ANY_ORIGIN
    spec = {spec.name: spec for spec in option_specs()}["allowed_origins"]
    assert spec.flag == "--allow-origin"
    assert spec.repeatable
    # twistd sockjs passes the repeated flag's values as a tuple, () when none is given.
    assert not SockJSOptions.from_kwargs(allowed_origins=()).allowed_origins.restricted
    options, rest = parse_text_options(
        {"allowed_origins": "https://a.example,https://*.b.example", "port": "8080"}
    )
    made = SockJSOptions.from_kwargs(**options).allowed_origins
    assert made.allows("https://a.example") and made.allows("https://x.b.example")
    assert not made.allows("https://c.example")
    assert rest == {"port": "8080"}


def test_restricted_policy_switches_off_the_uncheckable_transports() -> None:
    options = SockJSOptions.from_kwargs(**RESTRICTED)
    assert not options.enabled("htmlfile")
    assert not options.enabled("jsonp-polling")
    for name in ("websocket", "xhr-streaming", "xhr-polling", "eventsource", "raw-websocket"):
        assert options.enabled(name)
    assert SockJSOptions().enabled("htmlfile") and SockJSOptions().enabled("jsonp-polling")


# -- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def restricted(make_service: Callable[..., Service]) -> Service:
    return make_service(**RESTRICTED)


def test_info_reports_the_policy(make_service: Callable[..., Service]) -> None:
    default = json.loads(make_service().http.get("/s/info").response.body)
    assert default["origins"] == ["*:*"]
    assert default["transports"] == [
        "websocket",
        "xhr-streaming",
        "eventsource",
        "iframe-eventsource",
        "htmlfile",
        "iframe-htmlfile",
        "xhr-polling",
        "iframe-xhr-polling",
        "jsonp-polling",
    ]
    service = make_service(jsessionid=True, **RESTRICTED)
    info = json.loads(service.http.get("/s/info", headers={"Origin": APP}).response.body)
    assert "origins" not in info
    assert info["websocket"] is True
    assert info["cookie_needed"] is True
    assert info["transports"] == ["websocket", "xhr-streaming", "eventsource", "xhr-polling"]
    no_ws = make_service(websocket=False, **RESTRICTED)
    info = json.loads(no_ws.http.get("/s/info").response.body)
    assert info["websocket"] is False
    assert "websocket" not in info["transports"]


@pytest.mark.parametrize("path", ["/s/info", "/s/0/a/xhr", "/s/0/a/xhr_send"])
def test_preflight_allows_only_allowed_origins(restricted: Service, path: str) -> None:
    allowed = restricted.http.request("OPTIONS", path, headers={"Origin": APP}).response
    assert allowed.status == 204
    assert allowed.header("access-control-allow-origin") == APP
    assert allowed.header("access-control-allow-credentials") == "true"
    foreign = restricted.http.request(
        "OPTIONS",
        path,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Headers": "x"},
    ).response
    assert foreign.status == 204
    assert foreign.header("access-control-allow-origin") is None
    assert foreign.header("access-control-allow-credentials") is None
    assert foreign.header("access-control-allow-headers") is None
    assert foreign.header("vary") == "Origin"


def test_info_from_a_foreign_origin_is_unreadable(restricted: Service) -> None:
    response = restricted.http.get("/s/info", headers={"Origin": "https://evil.example"}).response
    assert response.status == 200
    assert response.header("access-control-allow-origin") is None
    assert response.header("vary") == "Origin"
    # A request with no Origin is not a cross-origin browser request: "*" as before.
    assert restricted.http.get("/s/info").response.header("access-control-allow-origin") == "*"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/s/0/a/xhr"), ("POST", "/s/0/a/xhr_streaming"), ("GET", "/s/0/a/eventsource")],
)
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "https://example.org"])
def test_foreign_origin_cannot_open_a_session(
    restricted: Service, method: str, path: str, origin: str
) -> None:
    response = restricted.http.request(method, path, headers={"Origin": origin}).response
    assert response.status == 403
    assert response.body == b"Origin not allowed.\n"
    assert response.header("access-control-allow-origin") is None
    assert restricted.protocols == []
    assert len(restricted.resource.service) == 0


def test_allowed_origin_and_no_origin_open_sessions(restricted: Service) -> None:
    opened = restricted.http.post("/s/0/a/xhr", headers={"Origin": APP}).response
    assert (opened.status, opened.body) == (200, b"o\n")
    assert opened.header("access-control-allow-origin") == APP
    other = restricted.http.post("/s/0/b/xhr", headers={"Origin": "https://x.example.org"})
    assert other.response.body == b"o\n"
    assert restricted.http.post("/s/0/c/xhr").response.body == b"o\n"
    assert len(restricted.protocols) == 3


def test_foreign_origin_cannot_send_into_a_session(restricted: Service) -> None:
    restricted.http.post("/s/0/a/xhr", headers={"Origin": APP})
    foreign = restricted.http.post(
        "/s/0/a/xhr_send", b'["evil"]', headers={"Origin": "https://evil.example"}
    ).response
    assert foreign.status == 403
    foreign_poll = restricted.http.post("/s/0/a/xhr", headers={"Origin": "null"}).response
    assert foreign_poll.status == 403
    assert restricted.protocol.received == []
    sent = restricted.http.post("/s/0/a/xhr_send", b'["ok"]', headers={"Origin": APP}).response
    assert sent.status == 204
    assert restricted.protocol.received == [b"ok"]


def test_two_origin_headers_are_refused(restricted: Service) -> None:
    raw = (
        b"POST /s/0/a/xhr HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n"
        b"Origin: https://app.example.com\r\nOrigin: https://evil.example\r\n\r\n"
    )
    assert Exchange(restricted.http.site, raw).response.status == 403
    assert restricted.protocols == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/s/0/a/htmlfile?c=cb"),
        ("GET", "/s/0/a/jsonp?c=cb"),
        ("POST", "/s/0/a/jsonp_send"),
        ("GET", "/s/iframe.html"),
        ("GET", "/s/iframe-1.6.1.min.js.html"),
    ],
)
def test_uncheckable_transports_are_not_served(
    make_service: Callable[..., Service], method: str, path: str
) -> None:
    restricted = make_service(**RESTRICTED)
    default = make_service()
    if path.endswith("_send"):  # jsonp_send answers 404 for a session that does not exist
        restricted.http.post("/s/0/a/xhr")
        default.http.post("/s/0/a/xhr")
    for origin in ({}, {"Origin": APP}):
        assert restricted.http.request(method, path, headers=origin).response.status == 404
    assert len(restricted.protocols) == (1 if path.endswith("_send") else 0)
    assert default.http.request(method, path).response.status != 404


def test_null_origin_is_reflected_by_default(service: Service) -> None:
    opened = service.http.post("/s/0/a/xhr", headers={"Origin": "null"}).response
    assert opened.status == 200
    assert opened.header("access-control-allow-origin") == "null"


def test_listed_null_origin_opens(make_service: Callable[..., Service]) -> None:
    service = make_service(allowed_origins=["null"])
    opened = service.http.post("/s/0/a/xhr", headers={"Origin": "null"}).response
    assert opened.header("access-control-allow-origin") == "null"
    assert service.http.post("/s/0/b/xhr", headers={"Origin": APP}).response.status == 403


def test_callable_policy_over_http(make_service: Callable[..., Service]) -> None:
    service = make_service(allowed_origins=lambda origin: origin == "https://mine.example")
    assert service.http.post("/s/0/a/xhr", headers={"Origin": "https://mine.example"}).response
    refused = service.http.post("/s/0/b/xhr", headers={"Origin": "https://theirs.example"})
    assert refused.response.status == 403
    assert len(service.protocols) == 1


def test_disable_cors_still_refuses_foreign_origins(make_service: Callable[..., Service]) -> None:
    service = make_service(disable_cors=True, **RESTRICTED)
    allowed = service.http.post("/s/0/a/xhr", headers={"Origin": APP}).response
    assert allowed.status == 200
    assert allowed.header("access-control-allow-origin") is None
    foreign = service.http.post("/s/0/b/xhr", headers={"Origin": "https://evil.example"})
    assert foreign.response.status == 403


def test_head_is_refused_like_get(restricted: Service) -> None:
    head = restricted.http.request(
        "HEAD", "/s/0/a/eventsource", headers={"Origin": "https://evil.example"}
    ).response
    assert head.status == 403
    assert restricted.protocols == []


# -- the websocket handshake ----------------------------------------------------------------------


def handshake(service: Service, path: str, **headers: str) -> Exchange:
    return service.http.get(path, headers={**HANDSHAKE_HEADERS, **headers})


@pytest.mark.parametrize("path", ["/s/0/a/websocket", "/s/websocket"])
def test_foreign_origin_handshake_is_refused_before_the_upgrade(
    restricted: Service, path: str
) -> None:
    exchange = handshake(restricted, path, Origin="https://evil.example")
    assert exchange.response.status == 403
    assert exchange.response.body == b"Origin not allowed.\n"
    assert b"Sec-WebSocket-Accept" not in exchange.transport.value()
    assert restricted.protocols == []
    assert len(restricted.resource.service) == 0


@pytest.mark.parametrize("headers", [{"Origin": APP}, {}])
def test_allowed_or_absent_origin_handshake_upgrades(
    restricted: Service, headers: dict[str, str]
) -> None:
    exchange = handshake(restricted, "/s/0/a/websocket", **headers)
    assert exchange.transport.value().startswith(b"HTTP/1.1 101 ")
    assert len(restricted.protocols) == 1


def test_hybi_draft_origin_header_is_checked(restricted: Service) -> None:
    headers = dict(HANDSHAKE_HEADERS, **{"Sec-WebSocket-Version": "8"})
    headers["Sec-WebSocket-Origin"] = "https://evil.example"
    exchange = restricted.http.get("/s/0/a/websocket", headers=headers)
    assert exchange.response.status == 403
    assert restricted.protocols == []


def test_any_origin_handshake_by_default(service: Service) -> None:
    exchange = handshake(service, "/s/0/a/websocket", Origin="https://anywhere.example")
    assert exchange.transport.value().startswith(b"HTTP/1.1 101 ")
