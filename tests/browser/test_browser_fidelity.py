"""Message fidelity in headless Chromium: any JavaScript string is a SockJS message.

sockjs-client 1.6.1 sends every payload below, on every transport and in both origin modes,
to the ``/echo`` service; the page compares each echo with what it sent using JavaScript
string equality, code unit by code unit (``runFidelity()`` in ``pages/runner.js``):

``fidelity_empty``
    the empty string;
``fidelity_lone_high`` / ``fidelity_lone_low``
    ``"\\ud800"`` and ``"\\udfff"`` alone;
``fidelity_high_inside``
    ``"a\\ud800b"``;
``fidelity_high_at_end`` / ``fidelity_low_at_start``
    a high surrogate ending a message, a low one starting it;
``fidelity_all_code_units``
    every UTF-16 code unit 0..65535 in order, as eight messages of 8192 code units.

Each payload goes between ordinary messages and is followed by a marker, so a dropped message
fails as soon as the marker's echo arrives. ``fidelity_mixed`` then sends all of them in one
burst, interleaved with ordinary messages, and expects the same sequence back.

The raw websocket endpoint (``/echo/websocket``) is driven by the browser's own ``WebSocket``,
which cannot send a lone surrogate: ``WebSocket.send(string)`` takes a WebIDL ``USVString``,
so the browser replaces every lone surrogate with U+FFFD before encoding the text as UTF-8.
There the test asserts that ``""`` round-trips and that every other payload comes back as
exactly that conversion (lone surrogates as U+FFFD, pairs and everything else unchanged).

These run in the same page load as ``test_browser_transports.py`` (the ``transport_run``
fixture), plus one page load per origin mode for the raw endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.test_browser_transports import ORIGINS, TRANSPORTS, skip_if_client_refuses

pytestmark = pytest.mark.browser

#: The checks of runFidelity() in pages/runner.js, in the order it runs them.
FIDELITY_CHECKS = [
    "fidelity_open",
    "fidelity_empty",
    "fidelity_lone_high",
    "fidelity_lone_low",
    "fidelity_high_inside",
    "fidelity_high_at_end",
    "fidelity_low_at_start",
    "fidelity_all_code_units",
    "fidelity_mixed",
]

#: The checks of runRawWebSocket(): the payloads, each in its own WebSocket connection.
RAW_CHECKS = [c for c in FIDELITY_CHECKS if c not in ("fidelity_open", "fidelity_mixed")]

#: What the raw endpoint's echo is compared with, by check: the payload itself, or the payload
#: with each lone surrogate replaced by U+FFFD (the browser's WebSocket does that on sending).
RAW_EXPECTATION = {
    "fidelity_empty": "echoed exactly",
    "fidelity_lone_high": "lone surrogates came back as U+FFFD",
    "fidelity_lone_low": "lone surrogates came back as U+FFFD",
    "fidelity_high_inside": "lone surrogates came back as U+FFFD",
    "fidelity_high_at_end": "lone surrogates came back as U+FFFD",
    "fidelity_low_at_start": "lone surrogates came back as U+FFFD",
    "fidelity_all_code_units": "lone surrogates came back as U+FFFD",
}


@pytest.mark.parametrize("check", FIDELITY_CHECKS)
@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fidelity(
    transport_run: Callable[[str, str], Any], transport: str, origin: str, check: str
) -> None:
    run = transport_run(transport, origin)
    skip_if_client_refuses(transport, origin, run)
    outcome = run.result[check]
    assert outcome["ok"], f"{transport} {origin} {check}: {outcome['detail']}\n{run.context()}"


@pytest.mark.parametrize("check", RAW_CHECKS)
@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("transport", ["raw-websocket"])
def test_raw_websocket_fidelity(
    raw_websocket_run: Callable[[str], Any], transport: str, origin: str, check: str
) -> None:
    run = raw_websocket_run(origin)
    outcome = run.result[check]
    assert outcome["ok"], f"raw websocket {origin} {check}: {outcome['detail']}\n{run.context()}"
    # The page says which comparison held; pin it, so a browser that starts sending lone
    # surrogates (or a payload list that loses them) is noticed here.
    assert outcome["detail"].startswith(RAW_EXPECTATION[check]), outcome["detail"]
