"""The resource every SockJS endpoint is: methods, preflight, HEAD and 405 in one place."""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from .._core.options import SockJSOptions
from .responses import method_not_allowed, preflight


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
