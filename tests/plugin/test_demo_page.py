"""
The demo page of ``twistd -n sockjs`` in a real browser (Debian's Chromium driven by
Playwright): pick one transport, connect, echo a message and chat with it.

sockjs-client comes from ``tests/browser/node_modules`` (``npm ci`` there, as
``tools/test.sh`` does), served by a second small HTTP server and named with
``--sockjs-url``, as a user would point the page at their own copy.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sockjs_helpers import ROOT, ServerProcess, twistd

from tests.conftest import unavailable

pytestmark = pytest.mark.browser

SOCKJS_CLIENT = ROOT / "tests" / "browser" / "node_modules" / "sockjs-client" / "dist"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def sockjsURL() -> Iterator[str]:
    if not (SOCKJS_CLIENT / "sockjs.min.js").exists():
        unavailable("no sockjs-client: run `npm ci` in tests/browser (tools/test.sh does)")
    handler = functools.partial(_QuietHandler, directory=str(SOCKJS_CLIENT))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sockjs.min.js"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def demo(sockjsURL: str) -> Iterator[str]:
    args = twistd() + [
        "-n",
        "--pidfile=",
        "--logfile=-",
        "sockjs",
        "--listen=tcp:0:interface=127.0.0.1",
        f"--sockjs-url={sockjsURL}",
    ]
    with ServerProcess(args) as server:
        port = server.port(r"starting on (\d+)")
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def browser(chromium: Any) -> Any:
    return chromium


@pytest.mark.parametrize(
    "transport",
    [
        "websocket",
        "xhr-streaming",
        "eventsource",
        "iframe-htmlfile",
        "xhr-polling",
        "jsonp-polling",
        "raw-websocket",
    ],
)
def test_demoPage(demo: str, browser: Any, transport: str, tmp_path: Path) -> None:
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(demo)
        assert page.locator("#error").is_hidden()
        for box in page.locator("#transports input").all():
            if box.get_attribute("value") != transport:
                box.uncheck()
        page.click("#connect")
        for pane in ("#echo", "#chat"):
            page.wait_for_function(
                "pane => document.querySelector(pane + ' .state').textContent === 'open'",
                arg=pane,
            )
            assert page.text_content(f"{pane} .transport") == transport

        page.fill("#echo input", f"echo over {transport} </script>")
        page.press("#echo input", "Enter")
        page.locator("#echo .log .in", has_text=f"echo over {transport} </script>").wait_for()

        page.fill("#chat input", f"chat over {transport}")
        page.press("#chat input", "Enter")
        page.locator("#chat .log .in", has_text=f"chat over {transport}").wait_for()

        page.screenshot(path=str(tmp_path / f"demo-{transport}.png"), full_page=True)
        page.click("#disconnect")
        page.wait_for_function("document.querySelector('#echo .state').textContent === 'closed'")
    finally:
        page.close()


ARTIFACTS = ROOT / "tests" / "browser" / "artifacts"


def _connect(browser: Any, demo: str, transport: str) -> Any:
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(demo)
    for box in page.locator("#transports input").all():
        if box.get_attribute("value") != transport:
            box.uncheck()
    page.click("#connect")
    page.wait_for_function("document.querySelector('#chat .state').textContent === 'open'")
    return page


@pytest.mark.parametrize("transports", [("websocket", "xhr-polling")])
def test_demoChatBetweenTwoPages(demo: str, browser: Any, transports: tuple[str, str]) -> None:
    """Two browser pages, on different transports, chat through the demo's broadcast."""
    alice = _connect(browser, demo, transports[0])
    bob = _connect(browser, demo, transports[1])
    try:
        alice.fill("#chat input", "hello bob </script><b>")
        alice.press("#chat input", "Enter")
        bob.locator("#chat .log .in", has_text="hello bob </script><b>").wait_for()
        bob.fill("#chat input", "hi alice ✓")
        bob.press("#chat input", "Enter")
        alice.locator("#chat .log .in", has_text="hi alice ✓").wait_for()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        alice.screenshot(path=str(ARTIFACTS / "demo-chat-alice.png"), full_page=True)
        bob.screenshot(path=str(ARTIFACTS / "demo-chat-bob.png"), full_page=True)
    finally:
        alice.close()
        bob.close()


@pytest.fixture(scope="module")
def offlineDemo() -> Iterator[str]:
    """The demo page whose sockjs-client cannot be loaded (no internet, say)."""
    args = twistd() + [
        "-n",
        "--pidfile=",
        "--logfile=-",
        "sockjs",
        "--listen=tcp:0:interface=127.0.0.1",
        "--sockjs-url=http://127.0.0.1:9/nowhere/sockjs.min.js",
    ]
    with ServerProcess(args) as server:
        port = server.port(r"starting on (\d+)")
        yield f"http://127.0.0.1:{port}/"


def test_demoPageWithoutSockJSClient(offlineDemo: str, browser: Any) -> None:
    """Offline, the page says so and still echoes and chats over the raw websocket."""
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(offlineDemo)
        assert "only the raw websocket endpoint" in (page.text_content("#error") or "")
        page.click("#connect")
        page.wait_for_function("document.querySelector('#echo .state').textContent === 'open'")
        assert page.text_content("#echo .transport") == "raw-websocket"
        page.fill("#echo input", "offline echo")
        page.press("#echo input", "Enter")
        page.locator("#echo .log .in", has_text="offline echo").wait_for()
    finally:
        page.close()
