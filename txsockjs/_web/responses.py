"""
What the HTTP answers of a SockJS service share: CORS, caching, JSESSIONID, error answers.
"""

from __future__ import annotations

import time

from twisted.web.http import datetimeToString
from twisted.web.iweb import IRequest
from twisted.web.server import Request
from twisted.web.server import version as server_version

from .._core.options import SockJSOptions
from .lean import http_date

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


_SERVER = b"Server: " + server_version + b"\r\n"
_ANY_ORIGIN = b"Vary: Origin\r\nAccess-Control-Allow-Origin: *\r\n"
_ORIGIN = (
    b"Vary: Origin\r\nAccess-Control-Allow-Origin: %s\r\n"
    b"Access-Control-Allow-Credentials: true\r\n"
)
_ALLOW_HEADERS = b"Access-Control-Allow-Headers: %s\r\n"


class AnswerHead:
    """
    The head of one kind of answer of the lean path (see :mod:`txsockjs._web.lean`), built
    once: the same bytes, header for header, as twisted.web sends for the answer on the
    ordinary path, with only ``Date`` and the CORS headers filled in per request.

    :param status: e.g. ``b"204 No Content"``.
    :param before: the header lines between ``Date`` and the CORS headers.
    :param after: the header lines after the CORS headers, up to the empty line.
    :param cross_origin: whether the answer has CORS headers (unless ``disable_cors``).
    """

    __slots__ = ("after", "before", "cors", "start")

    def __init__(
        self,
        options: SockJSOptions,
        status: bytes,
        before: bytes,
        after: bytes,
        cross_origin: bool,
    ):
        self.start = b"HTTP/1.1 " + status + b"\r\n" + _SERVER + b"Date: "
        self.before = b"\r\n" + before
        self.after = after + b"\r\n"
        self.cors = cross_origin and not options.disable_cors

    def build(self, headers: dict[bytes, bytes]) -> bytes:
        """The head for a request with these headers (lowercase names, one value each)."""
        if not self.cors:
            return b"%s%s%s%s" % (self.start, http_date(), self.before, self.after)
        origin = headers.get(b"origin")
        cors = _ORIGIN % origin if origin else _ANY_ORIGIN
        wanted = headers.get(b"access-control-request-headers")
        if wanted:
            cors += _ALLOW_HEADERS % wanted
        return b"%s%s%s%s%s" % (self.start, http_date(), self.before, cors, self.after)
