"""
Prometheus metrics of SockJS services: sessions, messages, bytes, refusals, timeouts.

Needs ``prometheus-client`` (``pip install txsockjs[metrics]``). The services count with
plain integers whatever happens; this module only reads those counters, when Prometheus
scrapes, so serving metrics costs nothing between scrapes::

    from txsockjs.metrics import MetricsResource

    root.putChild(b"echo", echo)
    root.putChild(b"metrics", MetricsResource({"/echo": echo}))

Or register the collector on a registry of your own (the default one, for instance, to
expose it beside the process and Python metrics through your own endpoint)::

    from prometheus_client import REGISTRY
    from txsockjs.metrics import SockJSCollector

    REGISTRY.register(SockJSCollector({"/echo": echo}))

Every metric has a ``service`` label (the name each service is given) and, except the
refusals, a ``transport`` label (``websocket``, ``xhr-streaming``, ... as sockjs-client names
them; ``raw-websocket`` for ``/websocket``). See ``doc/operations.rst``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Union

try:
    from prometheus_client import CollectorRegistry, ProcessCollector
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.exposition import choose_encoder
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"txsockjs.metrics needs prometheus-client: pip install txsockjs[metrics] ({_error})"
    ) from _error
from twisted.web.resource import Resource
from twisted.web.server import Request

from ._core.service import SessionService
from ._core.stats import CLOSE_REASONS, ServiceSnapshot, snapshot

__all__ = ["MetricsResource", "SockJSCollector"]

#: What :class:`SockJSCollector` takes for a service: a ``SockJSResource`` (or anything
#: with its ``service``), or the service itself.
ServiceLike = Union[Any, SessionService]  # noqa: UP007

_LABELS = ["service", "transport"]

#: (name, help, attribute of the transport snapshot) of the per-transport counters.
_COUNTERS = (
    ("sockjs_sessions_opened", "SockJS sessions whose protocol was connected.", "opened"),
    (
        "sockjs_messages_received",
        "Messages from clients delivered to the protocols.",
        "messages_in",
    ),
    ("sockjs_messages_sent", "Messages sent to clients.", "messages_out"),
    (
        "sockjs_received_bytes",
        "UTF-8 bytes of the messages delivered to the protocols.",
        "bytes_in",
    ),
    (
        "sockjs_sent_bytes",
        "Bytes of the messages sent to clients (JSON strings on the SockJS transports, "
        "framing not included).",
        "bytes_out",
    ),
    ("sockjs_heartbeats", "Heartbeats sent (frames, or pings on websockets).", "heartbeats"),
    (
        "sockjs_liveness_timeouts",
        "Websockets dropped because their client answered no ping.",
        "liveness_timeouts",
    ),
)
#: (name, help, attribute) of the per-transport gauges.
_GAUGES = (
    ("sockjs_sessions_open", "SockJS sessions open now.", "open"),
    (
        "sockjs_queued_bytes",
        "Bytes queued for clients now, not yet written to their connections.",
        "queued_bytes",
    ),
)
_CLOSED = ("sockjs_sessions_closed", "SockJS sessions closed, by reason.")
_REFUSALS = (
    "sockjs_refusals",
    "Requests refused and sessions closed by a cap, the origin policy, the authenticate hook "
    "or the binding of sessions to hosts, by reason.",
)


def _known_refusals() -> tuple[str, ...]:
    """The refusal reasons the service declares, so each has a series from the start."""
    from ._core import service as _service

    reasons: tuple[str, ...] = getattr(_service, "REFUSAL_REASONS", ())
    return reasons


def service_of(thing: ServiceLike) -> SessionService:
    """The :class:`SessionService` of a ``SockJSResource``, or ``thing`` itself."""
    if isinstance(thing, SessionService):
        return thing
    service = getattr(thing, "service", None)
    if isinstance(service, SessionService):
        return service
    raise TypeError(f"expected a SockJSResource or its service (resource.service), not {thing!r}")


class SockJSCollector:
    """
    A ``prometheus_client`` collector of SockJS services: it reads their counters when
    collected (scraped), never before.

    :param services: each service's name (its ``service`` label, for instance where it is
        mounted: ``"/echo"``) and the service (a ``SockJSResource`` or its ``service``).
    """

    def __init__(self, services: Mapping[str, ServiceLike] | None = None):
        self._services: dict[str, SessionService] = {}
        for name, service in (services or {}).items():
            self.add(name, service)

    def add(self, name: str, service: ServiceLike) -> None:
        """Collect ``service`` too, labelled ``name``."""
        if name in self._services:
            raise ValueError(f"a service named {name!r} is collected already")
        self._services[name] = service_of(service)

    def describe(self) -> Iterator[Metric]:
        """The metric families without samples, for the registry's name checks."""
        return self._families({})

    def collect(self) -> Iterator[Metric]:
        """The metric families with the services' numbers as they are now."""
        return self._families({name: snapshot(s) for name, s in self._services.items()})

    def _families(self, snapshots: Mapping[str, ServiceSnapshot]) -> Iterator[Metric]:
        for name, help_text, attribute in _GAUGES:
            gauge = GaugeMetricFamily(name, help_text, labels=_LABELS)
            for service, numbers in snapshots.items():
                for transport, stats in numbers.transports.items():
                    gauge.add_metric([service, transport], getattr(stats, attribute))
            yield gauge
        for name, help_text, attribute in _COUNTERS:
            counter = CounterMetricFamily(name, help_text, labels=_LABELS)
            for service, numbers in snapshots.items():
                for transport, stats in numbers.transports.items():
                    counter.add_metric([service, transport], getattr(stats, attribute))
            yield counter
        closed = CounterMetricFamily(*_CLOSED, labels=[*_LABELS, "reason"])
        for service, numbers in snapshots.items():
            for transport, stats in numbers.transports.items():
                reasons = list(CLOSE_REASONS) + [r for r in stats.closed if r not in CLOSE_REASONS]
                for reason in reasons:
                    closed.add_metric([service, transport, reason], stats.closed.get(reason, 0))
        yield closed
        refusals = CounterMetricFamily(*_REFUSALS, labels=["service", "reason"])
        known = _known_refusals()
        for service, numbers in snapshots.items():
            counted = numbers.refusals
            for reason in list(known) + sorted(r for r in counted if r not in known):
                refusals.add_metric([service, reason], counted.get(reason, 0))
        yield refusals


class MetricsResource(Resource):
    """
    A ``twisted.web`` resource answering ``GET`` with the metrics of SockJS services in
    Prometheus's text format (or OpenMetrics, when the scraper asks for it). Mount it where
    you like; it is a leaf.

    :param services: each service's name (its ``service`` label) and the service (a
        ``SockJSResource`` or its ``service``).
    :param registry: a ``prometheus_client`` registry to register the collector on and to
        serve whole (``prometheus_client.REGISTRY`` adds the process and Python metrics
        already there). When omitted: a registry of its own, with the collector and the
        process's CPU, memory and file descriptor metrics.
    """

    isLeaf = True

    def __init__(
        self,
        services: Mapping[str, ServiceLike] | None = None,
        *,
        registry: CollectorRegistry | None = None,
    ):
        super().__init__()  # type: ignore[no-untyped-call]
        #: The collector: :meth:`SockJSCollector.add` collects one more service.
        self.collector = SockJSCollector(services)
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
        registry.register(self.collector)
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        """The metrics, in the format the ``Accept`` header asks for."""
        accept = request.getHeader(b"accept") or b""
        encoder, content_type = choose_encoder(accept.decode("latin-1"))
        body = encoder(self.registry)
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        return body
