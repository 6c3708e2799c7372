"""
Metrics from a real server (issue 12): sessions over real clients, then a scrape of
``MetricsResource`` on the same Site, parsed as Prometheus text.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
import treq
from prometheus_client.parser import text_string_to_metric_families

from txsockjs.metrics import MetricsResource

from .clients import with_timeout
from .servers import Harness


async def scrape(harness: Harness) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await with_timeout(
        harness.reactor, treq.get(harness.url("metrics"), pool=harness.pool)
    )
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type")[0].startswith("text/plain")
    text = (await with_timeout(harness.reactor, treq.text_content(response))).strip()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest_twisted.ensureDeferred
async def test_scrape_after_real_sessions(harness: Harness) -> None:
    harness.root.putChild(b"metrics", MetricsResource({"/control": harness.services["control"]}))
    websocket = await harness.open("websocket", "control")
    polling = await harness.open("xhr-polling", "control")
    await websocket.send("one", "two")
    assert await websocket.recv_many(2) == ["one", "two"]
    await polling.send("three")
    assert await polling.recv() == "three"
    await websocket.send("quit")
    await websocket.wait_closed()
    await harness.until(
        lambda: harness.services["control"].service.stats["websocket"].open == 0,
        "the websocket session is closed",
    )
    samples = await scrape(harness)
    ws = {"service": "/control", "transport": "websocket"}
    xhr = {"service": "/control", "transport": "xhr-polling"}
    assert value(samples, "sockjs_sessions_opened_total", **ws) == 1
    assert value(samples, "sockjs_sessions_open", **ws) == 0
    assert value(samples, "sockjs_sessions_closed_total", reason="normal", **ws) == 1
    assert value(samples, "sockjs_messages_received_total", **ws) == 3
    assert value(samples, "sockjs_messages_sent_total", **ws) == 2
    assert value(samples, "sockjs_received_bytes_total", **ws) == len("onetwoquit")
    assert value(samples, "sockjs_sessions_open", **xhr) == 1
    assert value(samples, "sockjs_messages_received_total", **xhr) == 1
    assert value(samples, "sockjs_sent_bytes_total", **xhr) == len('"three"')
    assert value(samples, "sockjs_queued_bytes", **xhr) == 0
    assert any(name == "process_resident_memory_bytes" for name, _ in samples) or not _linux()


def _linux() -> bool:
    import sys

    return sys.platform.startswith("linux")
