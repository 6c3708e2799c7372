"""The txsockjs server the browser tests drive, run as a subprocess.

Usage: ``python tests/browser/server.py [--log FILE]``

It listens on two ports of 127.0.0.1 (both chosen by the system) and writes one JSON line to
stdout, ``{"api": PORT, "pages": PORT}``, once both listen:

``api`` port
    The SockJS services, the test pages and the client script, so a page loaded from here
    talks to the services same-origin:

    - ``/echo``: echoes every message.
    - ``/close_on_request``: echoes, except that a message ``close CODE REASON`` makes the
      server close the session with that code and reason.
    - ``/cookie_echo``: echo with the JSESSIONID cookie on.
    - ``/static/sockjs.min.js``: sockjs-client from ``node_modules`` (installed by ``npm ci``);
      the services' iframe page points at it.
    - ``/pages/...``: the test pages of ``pages/``.
    - ``/_log``: the requests seen since the last ``/_log`` (method, path, Cookie header), as
      JSON; reading it empties it.

``pages`` port
    Only ``/static/`` and ``/pages/``: a page loaded from here talks to the services
    cross-origin.

The server stops when its stdin closes, so it never outlives the test run that started it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from twisted.internet import protocol, reactor, stdio
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure
from twisted.web import resource, server, static

from txsockjs import SockJSResource

HERE = Path(__file__).resolve().parent
SOCKJS_CLIENT = HERE / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"
PAGES = HERE / "pages"

#: Short, so that three heartbeat periods pass quickly in the browser.
HEARTBEAT_DELAY = 0.5

log = Logger()


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


class CloseOnRequest(protocol.Protocol):
    """Echo; ``close CODE REASON`` closes the session with that code and reason."""

    def dataReceived(self, data: bytes) -> None:
        text = data.decode("utf-8")
        if text.startswith("close "):
            _, code, reason = text.split(" ", 2)
            log.info("closing on request with {code} {reason!r}", code=code, reason=reason)
            self.transport.close(int(code), reason)  # type: ignore[attr-defined]
        else:
            self.transport.write(data)


class RequestLog(resource.Resource):
    """``/_log``: hands out the requests recorded since the last read."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []

    def record(self, request: server.Request) -> None:
        cookie = request.getHeader(b"cookie")
        self.entries.append(
            {
                "method": request.method.decode("ascii", "replace"),
                "path": request.path.decode("utf-8", "replace"),
                "cookie": cookie.decode("latin-1") if cookie is not None else None,
                "upgrade": (request.getHeader(b"upgrade") or b"").decode("latin-1"),
            }
        )

    def render_GET(self, request: server.Request) -> bytes:
        entries, self.entries = self.entries, []
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(entries).encode("utf-8")


class LoggingSite(server.Site):
    """A Site that records every request (other than ``/_log``) in a RequestLog."""

    def __init__(self, root: resource.Resource, request_log: RequestLog) -> None:
        super().__init__(root)
        self.request_log = request_log

    def getResourceFor(self, request: server.Request) -> resource.IResource:
        if request.path != b"/_log":
            self.request_log.record(request)
        return super().getResourceFor(request)


def add_static(root: resource.Resource) -> None:
    scripts = static.File(str(SOCKJS_CLIENT.parent))
    scripts.contentTypes = {**scripts.contentTypes, ".js": "application/javascript"}
    root.putChild(b"static", scripts)
    pages = static.File(str(PAGES))
    pages.contentTypes = {
        **pages.contentTypes,
        ".js": "application/javascript",
        ".html": "text/html; charset=utf-8",
    }
    root.putChild(b"pages", pages)


def factory_for(protocol_class: type[protocol.Protocol]) -> protocol.Factory:
    return protocol.Factory.forProtocol(protocol_class)


def build_api_root(request_log: RequestLog) -> resource.Resource:
    options: dict[str, Any] = {
        "sockjs_url": "/static/sockjs.min.js",
        "heartbeat_delay": HEARTBEAT_DELAY,
    }
    root = resource.Resource()
    root.putChild(b"echo", SockJSResource(factory_for(Echo), **options))
    root.putChild(b"close_on_request", SockJSResource(factory_for(CloseOnRequest), **options))
    root.putChild(b"cookie_echo", SockJSResource(factory_for(Echo), jsessionid=True, **options))
    root.putChild(b"_log", request_log)
    add_static(root)
    return root


def build_pages_root() -> resource.Resource:
    root = resource.Resource()
    add_static(root)
    return root


class StopOnStdinClose(protocol.Protocol):
    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        log.info("stdin closed; stopping")
        if reactor.running:  # type: ignore[attr-defined]
            reactor.stop()  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="append the server's log to this file (default stderr)")
    args = parser.parse_args(argv)
    log_file = open(args.log, "a", encoding="utf-8") if args.log else sys.stderr  # noqa: SIM115
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log_file)], redirectStandardIO=False)
    if not SOCKJS_CLIENT.exists():
        log.error("missing {path}: run `npm ci` in tests/browser", path=str(SOCKJS_CLIENT))
        raise SystemExit(2)

    request_log = RequestLog()
    api = reactor.listenTCP(  # type: ignore[attr-defined]
        0, LoggingSite(build_api_root(request_log), request_log), interface="127.0.0.1"
    )
    pages = reactor.listenTCP(  # type: ignore[attr-defined]
        0, server.Site(build_pages_root()), interface="127.0.0.1"
    )
    ports = {"api": api.getHost().port, "pages": pages.getHost().port}
    log.info("listening: {ports}", ports=ports)
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    stdio.StandardIO(StopOnStdinClose())
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
