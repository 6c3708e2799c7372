"""Greeting, /info, the iframe page, routing, 404 and 405 answers."""

from __future__ import annotations

import json

import pytest

from .conftest import Service

NO_CACHE = "no-store, no-cache, no-transform, must-revalidate, max-age=0"


@pytest.mark.parametrize("path", ["/s", "/s/"])
def test_greeting(service: Service, path: str) -> None:
    response = service.http.get(path).response
    assert response.status == 200
    assert response.body == b"Welcome to SockJS!\n"
    assert response.header("content-type") == "text/plain; charset=UTF-8"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/s/a",
        "/s/a.html",
        "/s//",
        "/s///",
        "/s/a/a",
        "/s/a/a/",
        "/s//xhr",
        "/s/a./a/xhr",
        "/s/a/a./xhr",
        "/s/././/xhr",
        "/s/a/a/nope",
        "/s/iframe.htm",
        "/s/IFRAME.HTML",
    ],
)
def test_not_found(service: Service, path: str) -> None:
    assert service.http.get(path).response.status == 404
    assert service.http.post(path).response.status == 404


def test_info(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(jsessionid=True, base_url="http://x")
    first = service.http.get("/s/info", headers={"Origin": "test"}).response
    second = service.http.get("/s/info").response
    info = json.loads(first.body)
    assert info["websocket"] is True
    assert info["cookie_needed"] is True
    assert info["origins"] == ["*:*"]
    assert info["base_url"] == "http://x"
    assert info["entropy"] != json.loads(second.body)["entropy"]
    assert first.header("content-type") == "application/json; charset=UTF-8"
    assert first.header("cache-control") == NO_CACHE
    assert first.header("access-control-allow-origin") == "test"
    assert first.header("access-control-allow-credentials") == "true"
    assert second.header("access-control-allow-origin") == "*"
    assert "set-cookie" not in first.headers


def test_info_without_websocket(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(websocket=False)
    assert json.loads(service.http.get("/s/info").response.body)["websocket"] is False


@pytest.mark.parametrize("path", ["/s/info", "/s/abc/abc/xhr", "/s/abc/abc/xhr_send"])
def test_preflight(service: Service, path: str) -> None:
    response = service.http.request(
        "OPTIONS",
        path,
        headers={"Origin": "null", "Access-Control-Request-Headers": "a, b"},
    ).response
    assert response.status == 204
    assert response.body == b""
    assert response.header("access-control-allow-origin") == "null"
    assert response.header("access-control-allow-headers") == "a, b"
    assert int(response.header("access-control-max-age") or 0) > 1_000_000
    assert "public" in (response.header("cache-control") or "")
    assert response.header("expires")
    assert len(service.resource.service) == 0, "a preflight must not create a session"


def test_iframe_page_is_cacheable_and_304s(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(sockjs_url="/static/sockjs.js")
    for path in ["/s/iframe.html", "/s/iframe-0.1.2abc-dirty.2144.html", "/s/iframe-a.html?t=1"]:
        response = service.http.get(path).response
        assert response.status == 200
        assert b'<script src="/static/sockjs.js"></script>' in response.body
        assert b"SockJS.bootstrap_iframe();" in response.body
        assert "max-age=31536000" in (response.header("cache-control") or "")
        assert "last-modified" not in response.headers
        etag = response.header("etag")
    again = service.http.get("/s/iframe.html", headers={"If-None-Match": etag or ""}).response
    assert again.status == 304
    assert again.body == b""
    assert "content-type" not in again.headers


def test_wrong_method_is_405_without_body_or_type(service: Service) -> None:
    response = service.http.post("/s/0/0/websocket").response
    assert response.status == 405
    assert response.header("allow") == "GET"
    assert response.body == b""
    assert "content-type" not in response.headers
    assert service.http.get("/s/0/0/xhr").response.header("allow") == "POST, OPTIONS"


def test_websocket_get_without_upgrade_is_400(service: Service) -> None:
    response = service.http.get("/s/0/0/websocket").response
    assert response.status == 400
    assert b'Can "Upgrade" only to "WebSocket".' in response.body
    closing = service.http.get(
        "/s/0/0/websocket", headers={"Upgrade": "WebSocket", "Connection": "close"}
    ).response
    assert closing.status == 400


def test_disabled_transports_are_404(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(websocket=False, disabled_transports=["eventsource", "jsonp-polling"])
    for path in [
        "/s/0/0/websocket",
        "/s/websocket",
        "/s/0/0/eventsource",
        "/s/0/0/jsonp",
        "/s/0/0/jsonp_send",
    ]:
        assert service.http.get(path).response.status == 404, path
    assert service.http.post("/s/0/0/xhr").response.status == 200
    service.idle()
