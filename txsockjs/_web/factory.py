"""
Listening factories: a ``Site`` around one SockJS service (:class:`SockJSFactory`) or several
under different prefixes (:class:`SockJSMultiFactory`), for any server endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IProtocolFactory, IReactorTime
from twisted.web.resource import IResource
from twisted.web.server import Site

from .._core.checks import check_prefix
from .._core.options import SockJSOptions
from .lean import lean_channel_protocol
from .prefix import PrefixTree
from .request import body_limited_request
from .resource import SockJSResource


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

    #: Channels that answer SockJS's session requests on the lean path
    #: (:mod:`txsockjs._web.lean`); everything else as any twisted.web site does.
    protocol = lean_channel_protocol

    def log(self, request: Any) -> None:
        """Write the access log line of ``request``, if ``access_log`` is on."""
        if self.accessLog:
            super().log(request)


class _ServicesSite(SockJSSite):
    """
    A site serving SockJS services mounted in one :class:`~txsockjs._web.prefix.PrefixTree`:
    what both listening factories share (mounting, the body limit, drain, stop).
    """

    def __init__(self, *, access_log: bool) -> None:
        self._tree = PrefixTree()
        self._services: list[SockJSResource] = []
        super().__init__(self._tree, max_body_bytes=2, access_log=access_log)

    def _mount(self, prefix: str, resource: SockJSResource) -> None:
        self._tree.mount(prefix, resource)
        self.resource = self._tree.root
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


class SockJSMultiFactory(_ServicesSite):
    """
    One listening factory serving several SockJS services, each under its own prefix.

    Request bodies larger than every service's ``max_message_bytes`` are refused while they
    arrive (413).

    :param reactor: the time source of every service's timers (``task.Clock`` in tests).
    :param access_log: log every HTTP request, as ``twisted.web`` sites do; off by default
        because polling transports make a request per message.
    """

    def __init__(self, *, reactor: IReactorTime | None = None, access_log: bool = False):
        self._clock = reactor
        super().__init__(access_log=access_log)

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
        self._mount(prefix if prefix.startswith("/") else "/" + prefix, resource)
        return resource


class SockJSFactory(_ServicesSite):
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
        super().__init__(access_log=access_log)
        self.sockjs = SockJSResource(factory, options, reactor=reactor, **kwargs)
        self._mount(self.sockjs.options.prefix, self.sockjs)
