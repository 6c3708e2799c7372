"""
Listening factories: a ``Site`` around one SockJS service (:class:`SockJSFactory`) or several
under different prefixes (:class:`SockJSMultiFactory`), for any server endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IProtocolFactory, IReactorTime
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from ._checks import check_prefix
from ._http import body_limited_request, not_found
from ._options import SockJSOptions
from ._resource import SockJSResource


class _Root(Resource):
    """An intermediate node of the prefix tree; plain 404 for anything unknown."""

    def getChild(self, path: bytes, request: Any) -> Resource:
        return _NotFoundPage()  # type: ignore[no-untyped-call]

    def render(self, request: Any) -> bytes:
        return not_found(request)


class _NotFoundPage(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return not_found(request)


def _segments(prefix: str) -> list[bytes]:
    return [part.encode("utf-8") for part in prefix.strip("/").split("/") if part]


class SockJSSite(Site):
    """
    A ``twisted.web`` site for SockJS services: request bodies larger than
    ``max_body_bytes`` are refused while they arrive (413), and no access log line is
    written per request unless ``access_log`` is true (polling transports make a request per
    message).
    """

    def __init__(
        self,
        resource: IResource,
        *,
        max_body_bytes: int = 1024 * 1024,
        access_log: bool = False,
        **kwargs: Any,
    ):
        super().__init__(resource, **kwargs)  # type: ignore[no-untyped-call]
        self.requestFactory = body_limited_request(max_body_bytes)
        self.accessLog = access_log

    def log(self, request: Any) -> None:
        """Write the access log line of ``request``, if ``access_log`` is on."""
        if self.accessLog:
            super().log(request)


class SockJSMultiFactory(SockJSSite):
    """
    One listening factory serving several SockJS services, each under its own prefix.

    Request bodies larger than every service's ``max_message_bytes`` are refused while they
    arrive (413).

    :param reactor: the time source of every service's timers (``task.Clock`` in tests).
    :param access_log: log every HTTP request, as ``twisted.web`` sites do; off by default
        because polling transports make a request per message.
    """

    def __init__(self, *, reactor: IReactorTime | None = None, access_log: bool = False):
        self._root = _Root()  # type: ignore[no-untyped-call]
        self._services: list[SockJSResource] = []
        self._clock = reactor
        super().__init__(self._root, max_body_bytes=2, access_log=access_log)

    def addFactory(
        self,
        factory: IProtocolFactory,
        prefix: str,
        options: Mapping[str, Any] | None = None,
        /,
        **kwargs: Any,
    ) -> SockJSResource:
        """
        Serve ``factory`` over SockJS under ``prefix`` (``"echo"`` or ``"/chat/room"``).

        :return: the service's resource.
        """
        check_prefix(prefix)
        resource = SockJSResource(factory, options, reactor=self._clock, **kwargs)
        self._mount(prefix, resource)
        return resource

    def _mount(self, prefix: str, resource: SockJSResource) -> None:
        segments = _segments(prefix)
        if self.resource is not self._root:
            raise ValueError("a service mounted at '/' cannot share the factory")
        if not segments:
            if self._root.children:
                raise ValueError("a service at '/' cannot share the factory with others")
            self.resource = resource
        else:
            node: Resource = self._root
            for segment in segments[:-1]:
                child = node.children.get(segment)
                if child is None:
                    child = _Root()  # type: ignore[no-untyped-call]
                    node.putChild(segment, child)
                node = child
            node.putChild(segments[-1], resource)
        self._services.append(resource)
        limit = max(service.options.max_message_bytes for service in self._services)
        self.requestFactory = body_limited_request(limit)

    def drain(self, timeout: float | None = None) -> Deferred[None]:
        """
        Drain every service (see :meth:`SockJSResource.drain`): the Deferred fires when
        all of them are drained.
        """
        drained = gatherResults([service.drain(timeout) for service in self._services])
        return drained.addCallback(lambda _: None)

    def stopFactory(self) -> None:
        """Close every session of every service when the factory stops listening."""
        for service in self._services:
            service.close()
        super().stopFactory()


class SockJSFactory(SockJSMultiFactory):
    """
    A listening factory serving ``factory`` over SockJS at ``options.prefix`` (default ``/``).

    ``SockJSFactory(EchoFactory())`` can be given to ``endpoint.listen`` for any server
    endpoint (``serverFromString(reactor, "tcp:8080")``).

    :param factory: an :class:`~twisted.internet.interfaces.IProtocolFactory`.
    :param options: a txsockjs 1.x style dict of options (optional).
    :param reactor: the time source of the service's timers.
    :param access_log: log every HTTP request (see :class:`SockJSMultiFactory`).
    :param kwargs: options by name; see :class:`~txsockjs.SockJSOptions`.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        options: Mapping[str, Any] | SockJSOptions | None = None,
        /,
        *,
        reactor: IReactorTime | None = None,
        access_log: bool = False,
        **kwargs: Any,
    ):
        super().__init__(reactor=reactor, access_log=access_log)
        self.sockjs = SockJSResource(factory, options, reactor=reactor, **kwargs)
        self._mount(self.sockjs.options.prefix, self.sockjs)
