"""
The SockJS service root: greeting, ``/info``, the iframe page, and the routing of
``/<server>/<session>/<transport>`` to one child resource per transport.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory, IReactorTime
from twisted.web.http import CACHED
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from .._core.checks import check_factory, check_options
from .._core.options import SockJSOptions
from .._core.service import SessionService
from ..transports.http import (
    EVENTSOURCE,
    HTMLFILE,
    JSONP_POLLING,
    JSONP_SEND_NAME,
    XHR_POLLING,
    XHR_SEND_NAME,
    XHR_STREAMING,
    ReceiveResource,
    SendResource,
)
from ..transports.websocket import WebSocketResource
from .leaf import SockJSLeaf
from .lean import LeanHandler
from .responses import HTML, JSON, TEXT_PLAIN, cache_forever, cors, error, no_cache, not_found

_IFRAME = re.compile(rb"iframe[0-9a-z._-]*\.html\Z")
_SEGMENT = re.compile(rb"[^/.]+\Z")

_IFRAME_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="{sockjs_url}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""


class _Greeting(SockJSLeaf):
    def handle(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", TEXT_PLAIN)
        return b"Welcome to SockJS!\n"


#: sockjs-client's transports in its order of preference: the name, the transport of this
#: server it uses, and whether it runs inside the iframe page.
_CLIENT_TRANSPORTS = (
    ("websocket", "websocket", False),
    ("xhr-streaming", "xhr-streaming", False),
    ("eventsource", "eventsource", False),
    ("iframe-eventsource", "eventsource", True),
    ("htmlfile", "htmlfile", False),
    ("iframe-htmlfile", "htmlfile", True),
    ("xhr-polling", "xhr-polling", False),
    ("iframe-xhr-polling", "xhr-polling", True),
    ("jsonp-polling", "jsonp-polling", False),
)


def client_transports(options: SockJSOptions) -> list[str]:
    """
    The sockjs-client transports the service serves, in sockjs-client's order: the ones
    disabled, and those a restricted ``allowed_origins`` switches off (htmlfile,
    jsonp-polling, every iframe-based one), are left out.
    """
    iframe = options.allowed_origins.serves_iframe
    return [
        name
        for name, served_by, in_iframe in _CLIENT_TRANSPORTS
        if options.enabled(served_by) and (iframe or not in_iframe)
    ]


class _Info(SockJSLeaf):
    """
    ``/info``; answers 503 while the service drains, so that a load balancer's health
    check on it sends new sessions elsewhere.
    """

    preflight_methods = b"OPTIONS, GET"

    def __init__(self, options: SockJSOptions, service: SessionService):
        super().__init__(options)
        self._service = service
        static: dict[str, Any] = {
            "websocket": options.enabled("websocket"),
            "cookie_needed": options.jsessionid is not False,
        }
        if not options.allowed_origins.restricted:
            # The field of old clients, as sockjs-node sends it; a restricted service
            # leaves it out rather than name the origins it allows.
            static["origins"] = ["*:*"]
        static["transports"] = client_transports(options)
        if options.base_url is not None:
            static["base_url"] = options.base_url
        self._static = static

    def handle(self, request: IRequest) -> bytes:
        if self._service.draining:
            no_cache(request)
            return error(request, 503, "Server shutting down.")
        request.setHeader(b"Content-Type", JSON)
        no_cache(request)
        cors(request, self.options)
        info = dict(self._static, entropy=secrets.randbits(32))
        return json.dumps(info, separators=(",", ":")).encode("ascii")


class _Iframe(SockJSLeaf):
    def __init__(self, options: SockJSOptions):
        super().__init__(options)
        url = html.escape(options.sockjs_url, quote=True)
        self.body = _IFRAME_PAGE.format(sockjs_url=url).encode("utf-8")
        self.etag = b'"%s"' % hashlib.md5(self.body, usedforsecurity=False).hexdigest().encode()

    def handle(self, request: IRequest) -> bytes:
        cache_forever(request)
        if request.setETag(self.etag) == CACHED:
            request.responseHeaders.removeHeader(b"Content-Type")
            return b""
        request.setHeader(b"Content-Type", HTML)
        return self.body


class _NotFound(SockJSLeaf):
    methods = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS")

    def handle(self, request: IRequest) -> bytes:
        return not_found(request)


class SockJSResource(Resource):
    """
    A SockJS service as a ``twisted.web`` resource: mount it anywhere with ``putChild``.

    Each SockJS session becomes one connection of a protocol built by ``factory``: every
    message arrives as one ``dataReceived(bytes)`` (UTF-8), each ``transport.write(bytes)``
    sends one message, ``transport.loseConnection()`` closes the session with 3000
    ``"Go away!"`` after queued messages are sent, and ``connectionLost`` is called once.

    :param factory: an :class:`~twisted.internet.interfaces.IProtocolFactory`.
    :param options: a txsockjs 1.x style dict of options (optional).
    :param reactor: the time source of every timer (``task.Clock`` in tests); the global
        reactor when omitted.
    :param kwargs: options by name; see :class:`~txsockjs.SockJSOptions`.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        options: Mapping[str, Any] | SockJSOptions | None = None,
        /,
        *,
        reactor: IReactorTime | None = None,
        **kwargs: Any,
    ):
        super().__init__()  # type: ignore[no-untyped-call]
        check_factory(factory)
        check_options(options)
        if isinstance(options, SockJSOptions):
            if kwargs:
                fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
                options = SockJSOptions.from_kwargs(fields, **kwargs)
        else:
            options = SockJSOptions.from_kwargs(options, **kwargs)
        self.options: SockJSOptions = options
        self.service = SessionService(factory, options, reactor)
        service = self.service
        self._greeting = _Greeting(options)
        self._fixed: dict[bytes, Resource] = {b"info": _Info(options, self.service)}
        self._iframe = _Iframe(options)
        self._not_found = _NotFound(options)
        if options.enabled("raw-websocket"):
            self._fixed[b"websocket"] = WebSocketResource(service, raw=True)
        transports: dict[bytes, Resource] = {}
        for path, framing in (
            (b"xhr", XHR_POLLING),
            (b"xhr_streaming", XHR_STREAMING),
            (b"eventsource", EVENTSOURCE),
            (b"htmlfile", HTMLFILE),
            (b"jsonp", JSONP_POLLING),
        ):
            if options.enabled(framing.name):
                transports[path] = ReceiveResource(service, framing)
        if options.enabled("xhr-polling") or options.enabled("xhr-streaming"):
            transports[b"xhr_send"] = SendResource(service, XHR_SEND_NAME)
        if options.enabled("jsonp-polling"):
            transports[b"jsonp_send"] = SendResource(service, JSONP_SEND_NAME)
        if options.enabled("websocket"):
            transports[b"websocket"] = WebSocketResource(service, raw=False)
        self._transports = transports
        #: The handlers of the lean request path (see :mod:`txsockjs._web.lean`) by method
        #: and transport path segment.
        self.lean_handlers: dict[tuple[bytes, bytes], LeanHandler] = {}
        for path, transport in transports.items():
            handler = getattr(transport, "lean", None)
            if handler is not None and isinstance(transport, SockJSLeaf):
                self.lean_handlers[transport.methods[0], path] = handler

    def render(self, request: Request) -> bytes | int:
        """The service's own URL answers the greeting."""
        return self._greeting.render(request)

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """Route one path segment (and, for session URLs, the two after it)."""
        postpath = request.postpath
        if not postpath:
            if path == b"":
                return self._greeting
            fixed = self._fixed.get(path)
            if fixed is not None:
                return fixed
            if _IFRAME.match(path):
                # Any page can frame the iframe page and drive its transports, with the
                # service's own origin: a restricted origin policy does not serve it.
                if self.options.allowed_origins.serves_iframe:
                    return self._iframe
                return self._not_found
            return self._not_found
        if len(postpath) == 2:
            session, name = postpath
            transport = self._transports.get(name)
            if transport is not None and _SEGMENT.match(path) and _SEGMENT.match(session):
                request.prepath.extend(postpath)
                del postpath[:]
                return transport
        return self._not_found

    def close(self) -> None:
        """
        Close every session at once and cancel every timer; the factory is stopped.
        Messages still queued are dropped: :meth:`drain` sends them first.
        """
        self.service.stop()

    def drain(self, timeout: float | None = None) -> Deferred[None]:
        """
        Stop gracefully: new sessions are refused (503), every session is sent its queued
        messages and then ``c[1001,"Server shutting down"]``; the Deferred fires when all
        are closed, or after ``timeout`` seconds (``drain_timeout`` by default), when the
        rest are closed at once. ``self.service`` is an ``IService`` whose
        ``stopService`` does the same.
        """
        return self.service.drain(timeout)
