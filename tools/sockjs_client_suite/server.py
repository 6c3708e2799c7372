"""
A txsockjs server for sockjs-client's own test suite (``tests/`` of the sockjs-client repo).

Usage::

    python3 tools/sockjs_client_suite/server.py CHECKOUT [--port 8081] [--bundle FILE]

``CHECKOUT`` is a sockjs-client checkout (with ``npm install`` and ``gulp testbundle`` done).
The server listens on 127.0.0.1 only and serves, built on txsockjs's public API alone:

* the SockJS services the suite talks to, both at the site root (node tests use
  ``http://localhost:8081/echo``) and under ``/sockjs-test`` (browser tests use the page's
  origin + ``/sockjs-test``):

  - ``echo``: echoes every message; streaming responses end after 4096 bytes.
  - ``disabled_websocket_echo``: echo without the websocket transport.
  - ``cookie_needed_echo``: echo with the ``JSESSIONID`` cookie.
  - ``close``: closes every session as soon as it opens, with 3000 "Go away!".
  - ``amplify``: answers a message ``n`` (1 to 18, else 1) with ``"x" * 2**n``.
  - ``ticker``: sends ``tick!`` every second.
  - ``broadcast``: sends every message to every open session.

* plain HTTP fixtures: ``simple.txt`` (2048 ``a``, then ``\\nb\\n``), ``streaming.txt`` (the
  same, the last line 250 ms later), ``slow-script.js`` (500 ms late) and ``config.js``;
* under ``/sockjs-test/``, the suite's static files (``tests/html`` of the checkout: the
  iframe pages and ``lib/sockjs.js``);
* under ``/runner/``, the mocha page that runs the bundled browser tests (``runner.html``
  next to this file, mocha from the checkout's ``node_modules``, the bundle given by
  ``--bundle``).

Everything else is an empty 404, as the suite expects of a URL that does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure
from twisted.web import resource, static
from twisted.web.server import NOT_DONE_YET, Request

from txsockjs import SockJSResource, SockJSSite, broadcast

HERE = Path(__file__).resolve().parent
#: Where the browser tests find the SockJS services, relative to the page's origin.
BROWSER_PREFIX = b"sockjs-test"
#: Where the iframe page (iframe-based transports) loads sockjs-client from.
SOCKJS_URL = "/sockjs-test/lib/sockjs.js"
#: The suite's line of 2048 ``a``.
LINE = b"a" * 2048 + b"\n"

log = Logger()


class Echo(Protocol):
    """Sends every message back unchanged."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class CloseAtOnce(Protocol):
    """Closes the session as soon as it opens (``loseConnection``: 3000 "Go away!")."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.loseConnection()


class Amplify(Protocol):
    """Answers ``n`` with ``2**n`` times ``x`` (``n`` from 1 to 18, anything else counts 1)."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            exponent = int(float(data.decode("utf-8", "replace")))
        except (ValueError, OverflowError):
            exponent = 1
        if not 0 < exponent < 19:
            exponent = 1
        self.transport.write(b"x" * 2**exponent)


class Ticker(Protocol):
    """Sends ``tick!`` once a second while the session is open."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.call: IDelayedCall | None = None

    def connectionMade(self) -> None:
        self.call = self.clock.callLater(1.0, self.tick)

    def tick(self) -> None:
        assert self.transport is not None
        self.transport.write(b"tick!")
        self.call = self.clock.callLater(1.0, self.tick)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None


class Broadcast(Protocol):
    """Sends every message to every session of the same service."""

    def __init__(self, members: set[Broadcast]) -> None:
        self.members = members

    def connectionMade(self) -> None:
        self.members.add(self)

    def dataReceived(self, data: bytes) -> None:
        broadcast(
            [member.transport for member in self.members if member.transport is not None],
            data.decode("utf-8", "surrogatepass"),
        )

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.members.discard(self)


def services(clock: IReactorTime) -> dict[bytes, SockJSResource]:
    """One fresh set of the suite's SockJS services (each mount point gets its own)."""
    members: set[Broadcast] = set()

    def factory(build: Callable[[], Protocol]) -> Factory:
        return Factory.forProtocol(build)

    common: dict[str, Any] = {"sockjs_url": SOCKJS_URL, "reactor": clock}
    return {
        b"echo": SockJSResource(factory(Echo), response_limit=4096, **common),
        b"disabled_websocket_echo": SockJSResource(factory(Echo), websocket=False, **common),
        b"cookie_needed_echo": SockJSResource(factory(Echo), jsessionid=True, **common),
        b"close": SockJSResource(factory(CloseAtOnce), **common),
        b"amplify": SockJSResource(factory(Amplify), **common),
        b"ticker": SockJSResource(factory(lambda: Ticker(clock)), **common),
        b"broadcast": SockJSResource(factory(lambda: Broadcast(members)), **common),
    }


class NotFound(resource.Resource):
    """An empty-bodied 404."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-length", b"0")
        return b""


class Fixed(resource.Resource):
    """A small fixed body, optionally sent after a delay, optionally in two parts."""

    isLeaf = True

    def __init__(
        self,
        content_type: bytes,
        first: bytes,
        rest: bytes = b"",
        delay: float = 0.0,
        clock: IReactorTime | None = None,
        cors: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.content_type = content_type
        self.first = first
        self.rest = rest
        self.delay = delay
        self.clock = clock
        self.cors = cors

    def render_GET(self, request: Request) -> bytes | int:
        request.setHeader(b"content-type", self.content_type)
        if self.cors:
            request.setHeader(b"access-control-allow-origin", b"*")
        if not self.delay or self.clock is None:
            return self.first + self.rest
        if self.first:
            request.write(self.first)
        call = self.clock.callLater(self.delay, self._finish, request)
        request.notifyFinish().addErrback(lambda _: call.cancel() if call.active() else None)
        return NOT_DONE_YET

    def _finish(self, request: Request) -> None:
        request.write(self.rest)
        request.finish()


class ConfigScript(resource.Resource):
    """``config.js``: the ``clientOptions`` the suite's manual pages read."""

    isLeaf = True

    def __init__(self, port: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.port = port

    def render_GET(self, request: Request) -> bytes:
        host = (request.getRequestHostname() or b"127.0.0.1").decode("ascii", "replace")
        options = {
            "url": f"http://{host}:{self.port}",
            "sockjs_opts": {"info": {"cookie_needed": False}},
        }
        request.setHeader(b"content-type", b"application/javascript")
        return f"var clientOptions = {json.dumps(options)};".encode()


class Files(static.File):
    """Static files whose missing children are empty 404s, without directory listings."""

    childNotFound = NotFound()  # type: ignore[assignment]

    def directoryListing(self) -> resource.Resource:
        return NotFound()


class Mount(resource.Resource):
    """
    A path with fixed children; any other child is looked up in ``files`` (a directory),
    or is an empty 404.
    """

    def __init__(self, files: resource.Resource | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.files = files

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if self.files is None:
            return NotFound()
        child: resource.Resource = self.files.getChildWithDefault(path, request)
        return child

    def render(self, request: Request) -> bytes:
        return NotFound().render(request)


def build_root(checkout: Path, port: int, bundle: Path | None, clock: IReactorTime) -> Mount:
    """The whole site: services and fixtures at ``/`` and ``/sockjs-test/``, the runner."""

    def fixtures(mount: Mount) -> None:
        mount.putChild(b"simple.txt", Fixed(b"text/plain", LINE + b"b\n"))
        mount.putChild(b"streaming.txt", Fixed(b"text/plain", LINE, b"b\n", 0.25, clock))
        mount.putChild(
            b"slow-script.js",
            Fixed(b"application/javascript", b"", b"var a = 1;\n", 0.5, clock, cors=False),
        )
        mount.putChild(b"config.js", ConfigScript(port))
        for name, service in services(clock).items():
            mount.putChild(name, service)

    root = Mount()
    fixtures(root)
    browser = Mount(Files(str(checkout / "tests" / "html")))
    fixtures(browser)
    root.putChild(BROWSER_PREFIX, browser)

    runner = Mount()
    runner.putChild(b"", static.File(str(HERE / "runner.html"), "text/html"))
    runner.putChild(
        b"mocha.js",
        static.File(str(checkout / "node_modules" / "mocha" / "mocha.js"), "text/javascript"),
    )
    runner.putChild(
        b"domain.js",
        static.File(str(checkout / "tests" / "support" / "domain.js"), "text/javascript"),
    )
    if bundle is not None:
        runner.putChild(b"bundle.js", static.File(str(bundle), "text/javascript"))
    root.putChild(b"runner", runner)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("checkout", type=Path, help="a sockjs-client checkout")
    parser.add_argument("--port", type=int, default=8081, help="TCP port on 127.0.0.1")
    parser.add_argument("--bundle", type=Path, help="the browserified tests/browser.js")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    clock: Any = reactor
    root = build_root(args.checkout.resolve(), args.port, args.bundle, clock)
    site = SockJSSite(root, access_log=args.access_log)
    clock.listenTCP(args.port, site, interface="127.0.0.1")
    log.info("sockjs-client suite server on http://127.0.0.1:{port}/", port=args.port)
    clock.run()


if __name__ == "__main__":
    main()
