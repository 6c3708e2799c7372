"""sockjs-client 1.6.1 in headless Chromium against a txsockjs server, one transport at a time.

Each (transport, origin mode) pair is one page load (``pages/runner.js``) that runs every
check and reports them together; each check is then its own test here, so the test report is
the table transport x origin mode x check. Same-origin loads the page from the services' own
port, cross-origin from a second port of the test server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.browser

#: Every transport sockjs-client 1.6.1 offers in Chromium, by its `transports` option name.
TRANSPORTS = [
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
#: sockjs-client enables these only where XDomainRequest exists, which is IE 8 to 10.
IE_ONLY_TRANSPORTS = ["xdr-streaming", "xdr-polling"]

ORIGINS = ["same-origin", "cross-origin"]

#: The checks of runChecks() in pages/runner.js, in the order it runs them.
CHECKS = [
    "open",
    "transport_reported",
    "echo_ascii",
    "echo_non_ascii",
    "echo_script_tag",
    "echo_json_specials",
    "echo_100kb",
    "echo_100_in_order",
    "heartbeats",
    "server_close",
]

SESSION_REQUEST = re.compile(
    r"^/cookie_echo/[^/.]+/[^/.]+/"
    r"(xhr|xhr_send|xhr_streaming|eventsource|htmlfile|jsonp|jsonp_send|websocket)$"
)


def client_refuses(transport: str, origin: str) -> str | None:
    """Why sockjs-client itself never uses this transport in this origin mode, if it doesn't."""
    if transport == "htmlfile" and origin == "cross-origin":
        return (
            "sockjs-client 1.6.1 enables htmlfile only same-origin (HtmlFileTransport.enabled "
            "requires info.sameOrigin); iframe-htmlfile is its cross-origin form"
        )
    return None


def skip_if_client_refuses(transport: str, origin: str, run: Any = None) -> None:
    reason = client_refuses(transport, origin)
    if reason is None:
        return
    if run is not None:
        # Make sure the reason still holds: the client must have given up before opening.
        opened = run.result["open"]
        assert not opened["ok"], f"sockjs-client did use {transport} {origin}: update this test"
        assert "2000 All transports failed" in opened["detail"], opened["detail"]
    pytest.skip(reason)


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_transport(
    transport_run: Callable[[str, str], Any], transport: str, origin: str, check: str
) -> None:
    run = transport_run(transport, origin)
    skip_if_client_refuses(transport, origin, run)
    outcome = run.result[check]
    assert outcome["ok"], f"{transport} {origin} {check}: {outcome['detail']}\n{run.context()}"


def _session_requests(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["method"] != "OPTIONS" and SESSION_REQUEST.match(r["path"])]


def _jsessionid(cookies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cookies if c["name"] == "JSESSIONID"]


def _can_carry_cookie(transport: str, origin: str, request: dict[str, Any]) -> bool:
    # sockjs-client opens EventSource without withCredentials, so a cross-origin one sends no
    # cookies (its xhr_send requests do). Everything else is same-origin, credentialed CORS,
    # or a WebSocket handshake, all of which carry the cookie.
    return not (
        transport == "eventsource"
        and origin == "cross-origin"
        and request["path"].endswith("/eventsource")
    )


def _describe(requests: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {r['method']} {r['path']} Cookie: {r['cookie']!r}" for r in requests)


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_jsessionid_set(
    cookie_run: Callable[[str, str], dict[str, Any]], transport: str, origin: str
) -> None:
    skip_if_client_refuses(transport, origin)
    outcome = cookie_run(transport, origin)
    assert outcome["first"]["ok"], outcome["first"]
    if transport == "websocket":
        pytest.skip(
            "WebSocket: the only HTTP exchange is the handshake, where SockJS sets no cookie"
        )
    cookies = _jsessionid(outcome["cookies_after_first"])
    assert cookies, "no JSESSIONID cookie after a session; requests:\n" + _describe(
        outcome["first_requests"]
    )
    assert cookies[0]["path"] == "/", cookies


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_jsessionid_sent_back(
    cookie_run: Callable[[str, str], dict[str, Any]], transport: str, origin: str
) -> None:
    skip_if_client_refuses(transport, origin)
    outcome = cookie_run(transport, origin)
    assert outcome["second"]["ok"], outcome["second"]
    expected = f"JSESSIONID={outcome['seeded']}"
    requests = _session_requests(outcome["second_requests"])
    assert requests, "the server saw no session requests:\n" + _describe(
        outcome["second_requests"]
    )
    carriers = [r for r in requests if _can_carry_cookie(transport, origin, r)]
    missing = [r for r in carriers if expected not in (r["cookie"] or "").split("; ")]
    assert carriers and not missing, f"requests without {expected}:\n" + _describe(missing)
    # The server echoes the cookie it got instead of replacing it.
    values = [c["value"] for c in _jsessionid(outcome["cookies_after_second"])]
    assert values == [outcome["seeded"]], values


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("transport", IE_ONLY_TRANSPORTS)
def test_ie_only_transport(transport: str, origin: str) -> None:
    pytest.skip("IE only: sockjs-client enables xdr-* only where XDomainRequest exists (IE 8-10)")
