"""
Metrics (issue 12): the per-transport counters the sessions keep, and their Prometheus
exposition by ``txsockjs.metrics`` (read at scrape time only).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from txsockjs._core.stats import CLOSE_REASONS, close_reason
from txsockjs.metrics import MetricsResource, SockJSCollector

from .conftest import Service
from .fakehttp import FakeHTTP
from .test_websocket import Client, frame


def stats(service: Service, transport: str) -> Any:
    return service.resource.service.stats[transport]


def scrape(service: Service, **names: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics of a Site with ``service`` at /s and its metrics at /metrics."""
    root = Resource()
    root.putChild(b"s", service.resource)
    root.putChild(b"metrics", MetricsResource({"/s": service.resource, **names}))
    response = FakeHTTP(root).get("/metrics").response
    assert response.status == 200
    assert response.header("content-type").startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_websocket_messages_bytes_and_normal_close(service: Service) -> None:
    client = Client(service)
    client.send(frame(json.dumps(["héllo", "", "x"]).encode()))
    service.turn()
    numbers = stats(service, "websocket")
    assert (numbers.opened, numbers.open) == (1, 1)
    assert numbers.messages_in == 3
    assert numbers.bytes_in == len("héllo".encode()) + 0 + 1
    assert numbers.messages_out == 3
    # As sent: JSON string literals.
    assert numbers.bytes_out == len('"h\\u00e9llo"') + len('""') + len('"x"')
    service.protocol.transport.loseConnection()  # type: ignore[union-attr]
    assert (numbers.open, numbers.closed["normal"]) == (0, 1)
    # Other transports counted nothing.
    assert stats(service, "xhr-polling").opened == 0


def test_raw_websocket_binary_bytes(service: Service) -> None:
    class Binary(Protocol):
        def binaryMessageReceived(self, data: bytes) -> None:
            self.transport.writeBinary(data * 2)  # type: ignore[union-attr]

    service.resource.service.factory = Factory.forProtocol(Binary)
    client = Client(service, "/s/websocket")
    client.send(frame(b"\x00\x01\x02", opcode=2))
    numbers = stats(service, "raw-websocket")
    assert (numbers.messages_in, numbers.bytes_in) == (1, 3)
    assert (numbers.messages_out, numbers.bytes_out) == (1, 6)


class Closer(Protocol):
    """Does what it is told: ``raise``, ``bad`` (invalid UTF-8), ``abort``, ``close``."""

    def dataReceived(self, data: bytes) -> None:
        transport: Any = self.transport
        if data == b"raise":
            raise RuntimeError("bug")
        if data == b"bad":
            transport.write(b"\xff")
        if data == b"abort":
            transport.abortConnection()
        if data == b"close":
            transport.close(4000, "done")


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("raise", "server_error"),
        ("bad", "server_error"),
        ("abort", "aborted"),
        ("close", "normal"),
        ("client-close", "client_closed"),
        ("drop", "interrupted"),
        ("shutdown", "shutdown"),
        ("binary", "unsupported_data"),
    ],
)
def test_close_reasons_over_websocket(make_service: Any, action: str, reason: str) -> None:
    service = make_service()
    service.resource.service.factory = Factory.forProtocol(Closer)
    raw = action == "binary"
    client = Client(service, "/s/websocket" if raw else "/s/0/0/websocket")
    if action == "client-close":
        client.send(frame(struct.pack("!H", 1000), opcode=8))
        client.protocol.connectionLost(Failure(ConnectionLost()))
    elif action == "drop":
        client.protocol.connectionLost(Failure(ConnectionLost()))
    elif action == "shutdown":
        service.resource.close()
    elif action == "binary":
        client.send(frame(b"\x00", opcode=2))
    else:
        client.send(frame(json.dumps([action]).encode()))
    name = "raw-websocket" if raw else "websocket"
    numbers = stats(service, name)
    assert numbers.open == 0
    assert {r: n for r, n in numbers.closed.items() if n} == {reason: 1}


def test_close_reasons_over_polling(make_service: Callable[..., Service]) -> None:
    service = make_service(max_queued_bytes=1000, high_watermark=100, low_watermark=50)
    # Timed out: no poll came back.
    service.http.post("/s/0/a/xhr")
    service.clock.advance(3600)
    # Send buffer full: more than max_queued_bytes for a client that does not poll.
    service.http.post("/s/0/b/xhr")
    transport: Any = service.protocols[-1].transport
    for _ in range(3):
        transport.write(b"x" * 600)
    body = service.http.post("/s/0/b/xhr").response.body
    assert body == b'c[1008,"Send buffer full"]\n'
    numbers = stats(service, "xhr-polling")
    assert numbers.closed["timeout"] == numbers.closed["send_buffer_full"] == 1
    assert (numbers.opened, numbers.open) == (2, 0)
    service.idle()


def test_close_reason_of_each_frame() -> None:
    assert close_reason(b'c[1000,"Normal closure"]') == "normal"
    assert close_reason(b'c[3000,"Go away!"]') == "normal"
    assert close_reason(b'c[1011,"Server error"]') == "server_error"
    assert close_reason(b'c[1008,"Send buffer full"]') == "send_buffer_full"
    assert close_reason(b'c[1008,"Policy"]') == "other"
    assert close_reason(b'c[1001,"Server shutting down"]') == "shutdown"
    assert close_reason(b'c[3000,"Go away!"]', Failure(ConnectionLost())) == "normal"
    assert close_reason(b"c") == "other"


def test_heartbeats_counted(make_service: Callable[..., Service]) -> None:
    service = make_service(heartbeat_delay=1)
    Client(service)
    service.clock.advance(1.1)
    service.clock.advance(1.1)
    assert stats(service, "websocket").heartbeats == 2
    service.resource.close()


def test_open_gauge_matches_opened_minus_closed(make_service: Callable[..., Service]) -> None:
    service = make_service()
    clients = [Client(service) for _ in range(3)]
    for n in range(4):
        service.http.post(f"/s/0/p{n}/xhr_streaming")
    clients[0].protocol.connectionLost(Failure(ConnectionLost()))
    websocket, streaming = stats(service, "websocket"), stats(service, "xhr-streaming")
    assert (websocket.open, streaming.open) == (2, 4)
    service.resource.close()
    for numbers in (websocket, streaming):
        assert numbers.open == 0
        assert numbers.opened == sum(numbers.closed.values())
    assert websocket.closed["shutdown"] == 2 and streaming.closed["shutdown"] == 4


def test_scrape_gives_every_family(make_service: Callable[..., Service]) -> None:
    service = make_service(max_sessions=2)
    service.http.post("/s/0/a/xhr")
    service.http.send("/s/0/a/xhr_send", "one", "two")
    service.turn()
    # Two messages echoed and not polled yet: they wait in the queue.
    client = Client(service)
    refused = service.http.post("/s/0/c/xhr").response
    assert refused.status == 503
    client.send(frame(b'["w"]'))
    samples = scrape(service)
    labels = {"service": "/s", "transport": "xhr-polling"}
    assert sample(samples, "sockjs_sessions_open", **labels) == 1
    assert sample(samples, "sockjs_sessions_opened_total", **labels) == 1
    assert sample(samples, "sockjs_messages_received_total", **labels) == 2
    assert sample(samples, "sockjs_received_bytes_total", **labels) == 6
    # Queued, not sent yet: the client has not polled.
    assert sample(samples, "sockjs_messages_sent_total", **labels) == 0
    assert sample(samples, "sockjs_queued_bytes", **labels) == len('"one""two"')
    assert service.http.post("/s/0/a/xhr").response.body == b'a["one","two"]\n'
    samples = scrape(service)
    assert sample(samples, "sockjs_messages_sent_total", **labels) == 2
    assert sample(samples, "sockjs_sent_bytes_total", **labels) == len('"one""two"')
    assert sample(samples, "sockjs_queued_bytes", **labels) == 0
    ws = {"service": "/s", "transport": "websocket"}
    assert sample(samples, "sockjs_sessions_open", **ws) == 1
    assert sample(samples, "sockjs_messages_received_total", **ws) == 1
    assert sample(samples, "sockjs_queued_bytes", **ws) == 0
    assert sample(samples, "sockjs_heartbeats_total", **ws) == 0
    assert sample(samples, "sockjs_liveness_timeouts_total", **ws) == 0
    for reason in CLOSE_REASONS:
        assert sample(samples, "sockjs_sessions_closed_total", reason=reason, **ws) == 0
    assert sample(samples, "sockjs_refusals_total", service="/s", reason="max_sessions") == 1
    # Every enabled transport has its series from the start.
    transports = {dict(k[1]).get("transport") for k in samples if k[0] == "sockjs_sessions_open"}
    assert transports == {
        "websocket",
        "raw-websocket",
        "xhr-streaming",
        "xhr-polling",
        "eventsource",
        "htmlfile",
        "jsonp-polling",
    }
    # The default registry adds the process's own metrics.
    assert any(name.startswith("process_") for name, _ in samples) or not _has_proc()
    service.resource.close()


def _has_proc() -> bool:
    import os

    return os.path.exists("/proc/self/stat")


def test_disabled_transports_have_no_series(make_service: Callable[..., Service]) -> None:
    service = make_service(disabled_transports=["websocket", "raw-websocket"])
    samples = scrape(service)
    transports = {dict(k[1]).get("transport") for k in samples if k[0] == "sockjs_sessions_open"}
    assert "websocket" not in transports and "xhr-polling" in transports


def test_openmetrics_when_asked(service: Service) -> None:
    root = Resource()
    root.putChild(b"metrics", MetricsResource({"echo": service.resource}))
    accept = "application/openmetrics-text; version=1.0.0"
    response = FakeHTTP(root).get("/metrics", headers={"Accept": accept}).response
    assert response.header("content-type").startswith("application/openmetrics-text")
    assert response.body.endswith(b"# EOF\n")
    assert b'sockjs_sessions_opened_total{service="echo",transport="websocket"} 0.0' in (
        response.body
    )
    assert FakeHTTP(root).request("POST", "/metrics").response.status == 405


def test_collector_on_a_registry_of_ones_own(make_service: Callable[..., Service]) -> None:
    one, two = make_service(), make_service()
    registry = CollectorRegistry()
    collector = SockJSCollector({"one": one.resource})
    collector.add("two", two.resource.service)
    registry.register(collector)
    one.http.post("/s/0/a/xhr")
    labels = {"service": "one", "transport": "xhr-polling"}
    assert registry.get_sample_value("sockjs_sessions_opened_total", labels) == 1
    labels["service"] = "two"
    assert registry.get_sample_value("sockjs_sessions_opened_total", labels) == 0
    with pytest.raises(ValueError, match="named 'one'"):
        collector.add("one", two.resource)
    with pytest.raises(TypeError, match="SockJSResource"):
        collector.add("three", object())


def test_metrics_resource_on_a_given_registry(service: Service) -> None:
    registry = CollectorRegistry()
    resource = MetricsResource({"echo": service.resource}, registry=registry)
    assert resource.registry is registry
    assert (
        registry.get_sample_value(
            "sockjs_sessions_open", {"service": "echo", "transport": "websocket"}
        )
        == 0
    )


def test_counting_needs_no_prometheus_call(service: Service) -> None:
    """The hot path touches plain integers: the counters are not prometheus objects."""
    numbers = stats(service, "websocket")
    assert not hasattr(numbers, "__dict__")
    assert all(
        isinstance(getattr(numbers, name), int) for name in numbers.__slots__ if name != "closed"
    )
