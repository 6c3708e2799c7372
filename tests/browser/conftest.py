"""Fixtures of the real-browser tests: a txsockjs server subprocess and headless Chromium.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``, or ``$TXSOCKJS_CHROMIUM``) driven by
Playwright for Python; Playwright never downloads a browser here. sockjs-client comes from
``node_modules`` (``npm ci`` in this directory). When either is missing the tests skip on a
developer's machine, but fail when the environment variable ``CI`` is set: CI must never pass
without having run them.

``TXSOCKJS_BROWSER_PORTS='{"api": A, "pages": P}'`` points the tests at a server started by
hand instead of ``server.py`` (it must serve the same URL layout).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ARTIFACTS = HERE / "artifacts"
SOCKJS_CLIENT = HERE / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"
SOCKJS_CLIENT_VERSION = "1.6.1"

#: Must match tests/browser/server.py.
HEARTBEAT_DELAY = 0.5
CLOSE_CODE = 4001
CLOSE_REASON = "bye"

SERVER_START_TIMEOUT = 30.0
#: A poll still pending when a session closes ends with the next heartbeat (HEARTBEAT_DELAY).
COOKIE_SETTLE_TIMEOUT = 10.0


@dataclass
class Servers:
    api: int
    pages: int
    log_path: Path

    def origin(self, mode: str) -> str:
        """Where the test page is loaded from: the services' own port or the other one."""
        port = self.api if mode == "same-origin" else self.pages
        return f"http://127.0.0.1:{port}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api}"

    def take_request_log(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.base}/_log", timeout=10) as response:
            entries: list[dict[str, Any]] = json.load(response)
        return entries


@pytest.fixture(scope="package")
def servers() -> Iterator[Servers]:
    external = os.environ.get("TXSOCKJS_BROWSER_PORTS")
    if external:
        # A server started by hand (same URL layout as server.py), for debugging.
        ports = json.loads(external)
        yield Servers(api=ports["api"], pages=ports["pages"], log_path=Path(os.devnull))
        return
    if not SOCKJS_CLIENT.exists():
        unavailable(f"sockjs-client is not installed: run `npm ci` in {HERE}")
    package = json.loads((SOCKJS_CLIENT.parent.parent / "package.json").read_text())
    assert package["version"] == SOCKJS_CLIENT_VERSION, package["version"]
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "server.log"
    log_path.write_text("")
    # The checkout's txsockjs, installed or not.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with open(log_path, "ab") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), "--log", str(log_path)],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=SERVER_START_TIMEOUT)
        line = proc.stdout.readline() if ready else b""
        if not line:
            proc.kill()
            proc.wait(10)
            pytest.fail(
                f"the test server did not start (exit code {proc.returncode}); its log:\n"
                + log_path.read_text(),
                pytrace=False,
            )
        ports = json.loads(line)
        yield Servers(api=ports["api"], pages=ports["pages"], log_path=log_path)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="package")
def browser(servers: Servers, chromium: Any) -> Any:
    return chromium


@dataclass
class PageRun:
    """What one page load reported: the page's result plus what the browser said meanwhile."""

    result: dict[str, Any]
    console: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    cookies: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def context(self) -> str:
        lines = [f"page load took {self.seconds:.1f} s"]
        lines += [f"console: {line}" for line in self.console]
        lines += [
            f"server saw: {r['method']} {r['path']} cookie={r['cookie']!r}" for r in self.requests
        ]
        return "\n".join(lines)


def _run_page(
    browser: Any,
    servers: Servers,
    origin: str,
    name: str,
    script: str,
    argument: dict[str, Any],
    before: Callable[[Any], None] | None = None,
) -> PageRun:
    context = browser.new_context()
    try:
        if before is not None:
            before(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        run = PageRun(result={})
        page.on("console", lambda message: run.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: run.console.append(f"page error: {error}"))
        page.goto(f"{servers.origin(origin)}/pages/runner.html")
        servers.take_request_log()
        started = time.monotonic()
        run.result = page.evaluate(script, argument)
        run.seconds = time.monotonic() - started
        run.requests = servers.take_request_log()
        run.cookies = context.cookies()
        if not all(
            value.get("ok", True) for value in run.result.values() if isinstance(value, dict)
        ):
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        (ARTIFACTS / f"{name}.json").write_text(
            json.dumps(
                {"result": run.result, "console": run.console, "requests": run.requests},
                indent=2,
                ensure_ascii=False,
            )
        )
        return run
    finally:
        context.close()


@pytest.fixture(scope="package")
def transport_run(browser: Any, servers: Servers) -> Callable[[str, str], PageRun]:
    """One page load per (transport, origin mode) runs every check; later calls reuse it."""
    cache: dict[tuple[str, str], PageRun] = {}

    def run(transport: str, origin: str) -> PageRun:
        key = (transport, origin)
        if key not in cache:
            cache[key] = _run_page(
                browser,
                servers,
                origin,
                f"{transport}-{origin}",
                # Every check of the transport, then the message-fidelity checks, in one
                # page load.
                "async options => Object.assign("
                "await runChecks(options), await runFidelity(options))",
                {
                    "base": servers.base,
                    "transport": transport,
                    "heartbeatDelay": HEARTBEAT_DELAY,
                    "closeCode": CLOSE_CODE,
                    "closeReason": CLOSE_REASON,
                },
            )
        return cache[key]

    return run


@pytest.fixture(scope="package")
def raw_websocket_run(browser: Any, servers: Servers) -> Callable[[str], PageRun]:
    """The fidelity payloads through ``/echo/websocket`` from the browser's own WebSocket."""
    cache: dict[str, PageRun] = {}

    def run(origin: str) -> PageRun:
        if origin not in cache:
            cache[origin] = _run_page(
                browser,
                servers,
                origin,
                f"raw-websocket-{origin}",
                "options => runRawWebSocket(options)",
                {"base": servers.base},
            )
        return cache[origin]

    return run


def _wait_for_requests(page: Any, in_flight: set[Any], timeout: float) -> None:
    """Let the page's requests finish (or fail), checking every 50 ms for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while in_flight:
        if time.monotonic() > deadline:
            pytest.fail(
                f"requests still pending after {timeout} s: "
                + ", ".join(sorted(request.url for request in in_flight)),
                pytrace=False,
            )
        page.wait_for_timeout(50)  # Playwright delivers the request events meanwhile.


@pytest.fixture(scope="package")
def cookie_run(browser: Any, servers: Servers) -> Callable[[str, str], dict[str, Any]]:
    """Two sessions of the JSESSIONID service in one fresh browser context.

    The first starts with no cookie, so the server must set it. Before the second the test
    puts a cookie of its own in the browser: every request that can carry it must, and the
    server must echo that value rather than replace it.
    """
    cache: dict[tuple[str, str], dict[str, Any]] = {}

    def run(transport: str, origin: str) -> dict[str, Any]:
        key = (transport, origin)
        if key in cache:
            return cache[key]
        argument = {"base": servers.base, "transport": transport}
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            in_flight: set[Any] = set()
            # Playwright needs Python functions as handlers, not bound builtins.
            page.on("request", lambda request: in_flight.add(request))
            page.on("requestfinished", lambda request: in_flight.discard(request))
            page.on("requestfailed", lambda request: in_flight.discard(request))
            page.goto(f"{servers.origin(origin)}/pages/runner.html")
            servers.take_request_log()
            first = page.evaluate("options => runCookieSession(options)", argument)
            # A poll of the first session can still be pending after its close (the server
            # answers it with the next heartbeat); its Set-Cookie would overwrite the cookie
            # seeded below if it came in later.
            _wait_for_requests(page, in_flight, COOKIE_SETTLE_TIMEOUT)
            first_requests = servers.take_request_log()
            cookies_after_first = context.cookies()
            # A value of the test's own (the server sets "dummy" when none comes in), so the
            # second session shows that the browser sends it and the server keeps it.
            seeded = f"browser-{transport}-{origin}"
            context.add_cookies(
                [{"name": "JSESSIONID", "value": seeded, "url": servers.base + "/"}]
            )
            second = page.evaluate("options => runCookieSession(options)", argument)
            second_requests = servers.take_request_log()
            cookies_after_second = context.cookies()
        finally:
            context.close()
        outcome = {
            "first": first,
            "first_requests": first_requests,
            "cookies_after_first": cookies_after_first,
            "seeded": seeded,
            "second": second,
            "second_requests": second_requests,
            "cookies_after_second": cookies_after_second,
            "console": console,
        }
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"cookie-{transport}-{origin}.json").write_text(
            json.dumps(outcome, indent=2, ensure_ascii=False)
        )
        cache[key] = outcome
        return outcome

    return run


# The result table: transport x origin mode x check, printed at the end of the run and kept
# as artifacts/table.md.

_TABLE: dict[tuple[str, str], dict[str, str]] = {}
_COLUMNS: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "transport" not in params or "origin" not in params:
        return
    if report.when != "call" and report.passed:
        return
    name = getattr(item, "originalname", item.name)
    column = params.get("check") or name.removeprefix("test_")
    if column not in _COLUMNS:
        _COLUMNS.append(column)
    cell = "pass" if report.passed else "skip" if report.skipped else "FAIL"
    row = _TABLE.setdefault((params["transport"], params["origin"]), {})
    if row.get(column) != "FAIL":
        row[column] = cell


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TABLE:
        return
    header = ["transport", "origin", *_COLUMNS]
    rows = [
        [transport, origin, *(_TABLE[(transport, origin)].get(c, "-") for c in _COLUMNS)]
        for transport, origin in _TABLE
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    table = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    terminalreporter.section("browser results: transport x origin x check")
    for text in table:
        terminalreporter.write_line(text)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "table.md").write_text("\n".join(table) + "\n")
