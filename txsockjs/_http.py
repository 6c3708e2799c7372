"""
What the HTTP answers of a SockJS service share: CORS, caching, JSESSIONID, error answers,
and request bodies bounded in size.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.web.http import datetimeToString
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import Request

from ._options import SockJSOptions

ONE_YEAR = 365 * 24 * 3600
NO_CACHE = b"no-store, no-cache, no-transform, must-revalidate, max-age=0"
CACHE_FOREVER = b"public, max-age=%d" % ONE_YEAR

TEXT_PLAIN = b"text/plain; charset=UTF-8"
JAVASCRIPT = b"application/javascript; charset=UTF-8"
JSON = b"application/json; charset=UTF-8"
HTML = b"text/html; charset=UTF-8"


def cors(request: IRequest, options: SockJSOptions) -> None:
    """
    Allow the requesting origin, with credentials (``*`` when there is no Origin), if the
    ``allowed_origins`` policy allows it; an origin it refuses gets no CORS header, so that
    its pages cannot read the answer.
    """
    if options.disable_cors:
        return
    request.setHeader(b"Vary", b"Origin")
    origin = request.getHeader(b"origin")
    if origin:
        if not options.allowed_origins.allows_request(request):
            return
        request.setHeader(b"Access-Control-Allow-Origin", origin)
        request.setHeader(b"Access-Control-Allow-Credentials", b"true")
    else:
        request.setHeader(b"Access-Control-Allow-Origin", b"*")
    wanted = request.getHeader(b"access-control-request-headers")
    if wanted:
        request.setHeader(b"Access-Control-Allow-Headers", wanted)


def mount_prefix(request: IRequest, depth: int) -> str:
    """The path a service is mounted at: the request's path less its last ``depth`` parts."""
    prepath = request.prepath or []
    return "/" + "/".join(part.decode("utf-8", "replace") for part in prepath[:-depth])


def no_cache(request: IRequest) -> None:
    """Forbid caching of the answer."""
    request.setHeader(b"Cache-Control", NO_CACHE)


def cache_forever(request: IRequest) -> None:
    """Let the answer be cached for a year."""
    request.setHeader(b"Cache-Control", CACHE_FOREVER)
    request.setHeader(b"Expires", datetimeToString(time.time() + ONE_YEAR))


def set_jsessionid(request: IRequest, options: SockJSOptions) -> None:
    """Set the ``JSESSIONID`` cookie load balancers stick sessions by, if asked to."""
    setting = options.jsessionid
    if setting is False:
        return
    if setting is True:
        value = request.getCookie(b"JSESSIONID") or b"dummy"
        request.addCookie(b"JSESSIONID", value, path=b"/")
    else:
        setting(request)


def preflight(request: IRequest, options: SockJSOptions, methods: bytes) -> bytes:
    """Answer a CORS preflight ``OPTIONS`` request: 204, cacheable for a year."""
    request.setResponseCode(204)
    cache_forever(request)
    request.setHeader(b"Access-Control-Max-Age", b"%d" % ONE_YEAR)
    request.setHeader(b"Access-Control-Allow-Methods", methods)
    cors(request, options)
    return b""


def method_not_allowed(request: IRequest, allowed: bytes) -> bytes:
    """405 with ``Allow``, no body and no Content-Type."""
    request.setResponseCode(405)
    request.setHeader(b"Allow", allowed)
    _no_default_type(request)
    return b""


def not_found(request: IRequest) -> bytes:
    """A plain-text 404."""
    return error(request, 404, "404 Error: Page not found")


def error(request: IRequest, code: int, message: str) -> bytes:
    """A plain-text error answer."""
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", TEXT_PLAIN)
    return message.encode("utf-8") + b"\n"


def _no_default_type(request: IRequest) -> None:
    if isinstance(request, Request):
        request.defaultContentType = None


class BodyTooLarge(Exception):
    """A request body exceeds ``max_message_bytes``."""


def read_body(request: IRequest, limit: int) -> bytes:
    """
    The request body, at most ``limit`` bytes.

    :raises BodyTooLarge: when the body is larger.
    """
    content = request.content
    if content is None:
        return b""
    getvalue = getattr(content, "getvalue", None)
    if getvalue is not None:  # a BytesIO: twisted.web keeps small bodies in memory
        data: bytes = getvalue()
        if len(data) > limit:
            raise BodyTooLarge(len(data))
        return data
    content.seek(0, 2)
    size = content.tell()
    if size > limit:
        raise BodyTooLarge(size)
    content.seek(0)
    data = content.read()
    return data


class BodyLimitedRequest(Request):
    """
    A request that refuses, with 413, a body larger than ``maxBodyBytes`` while it arrives,
    instead of buffering it whole. :class:`~txsockjs.SockJSFactory` sites use it; sites of
    your own can use :func:`body_limited_request` as their ``requestFactory``.
    """

    maxBodyBytes = 1024 * 1024
    _refused = False
    _received = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        # SockJS parses the one form it takes (jsonp_send) itself; twisted.web would parse
        # every POST's Content-Type through the email package, the costliest step of a send.
        self._parsePOSTFormSubmission = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.maxBodyBytes:
            # HTTPChannel.allHeadersReceived answers "Expect: 100-continue" right after this
            # call; the 413 is the final answer, so nothing may follow it.
            self.requestHeaders.removeHeader(b"expect")
            self._refuse()
            length = 0
        super().gotLength(length)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.maxBodyBytes:
            self._refuse()
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]

    def process(self) -> None:
        if not self._refused:
            super().process()  # type: ignore[no-untyped-call]

    def _refuse(self) -> None:
        if self._refused:
            return
        self._refused = True
        body = b"Payload too large.\n"
        transport = self.channel.transport
        if transport is not None:
            transport.write(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: %s\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (TEXT_PLAIN, len(body), body)
            )
        self.channel.loseConnection()


def body_limited_request(max_body_bytes: int) -> type[BodyLimitedRequest]:
    """A ``requestFactory`` for a ``Site`` that refuses bodies over ``max_body_bytes``."""
    return type("BodyLimitedRequest", (BodyLimitedRequest,), {"maxBodyBytes": max_body_bytes})


class SockJSLeaf(Resource):
    """
    A leaf of the SockJS service: answers the methods it has handlers for, a CORS preflight
    when ``preflight_methods`` is set, and 405 with ``Allow`` for every other method.
    """

    isLeaf = True
    #: Methods answered, besides OPTIONS, e.g. ``(b"POST",)``.
    methods: tuple[bytes, ...] = (b"GET",)
    #: ``Access-Control-Allow-Methods`` of the preflight answer; no preflight when empty.
    preflight_methods = b""

    def __init__(self, options: SockJSOptions):
        super().__init__()  # type: ignore[no-untyped-call]
        self.options = options

    def render(self, request: Request) -> bytes | int:
        method = request.method
        if method == b"HEAD" and b"GET" in self.methods:
            return self.head(request)
        if method in self.methods:
            return self.handle(request)
        if method == b"OPTIONS" and self.preflight_methods:
            return preflight(request, self.options, self.preflight_methods)
        allowed = self.methods + ((b"OPTIONS",) if self.preflight_methods else ())
        return method_not_allowed(request, b", ".join(allowed))

    def handle(self, request: Request) -> bytes | int:
        """Answer a request whose method is one of :attr:`methods`."""
        raise NotImplementedError

    def head(self, request: Request) -> bytes | int:
        """
        Answer ``HEAD`` on a resource that answers ``GET``: the status and headers the
        ``GET`` would get, and no body.

        By default the ``GET`` is rendered and its body returned; twisted.web then sends the
        headers with that body's ``Content-Length`` and drops the body. That is only right
        for a ``handle`` that returns its whole answer and changes nothing: a resource whose
        ``GET`` opens a session, streams or upgrades the connection overrides this.
        """
        return self.handle(request)
