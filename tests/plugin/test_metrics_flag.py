"""``twistd sockjs --metrics PATH``: the metrics resource mounted beside the services."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.testing import MemoryReactorClock
from twisted.python.usage import UsageError
from twisted.web.test.requesthelper import DummyRequest

from txsockjs import tap
from txsockjs.metrics import MetricsResource


def site_root(*argv: str) -> Any:
    options = tap.Options(reactor=MemoryReactorClock())
    options.parseOptions(list(argv))
    service = tap.makeService(options)
    [site] = {svc.factory for svc in service if isinstance(svc, StreamServerEndpointService)}
    return site.resource


def scrape(resource: MetricsResource) -> str:
    request = DummyRequest([])
    body = resource.render_GET(request)  # type: ignore[arg-type]
    return body.decode()


def test_demo_services_are_labelled_by_their_path() -> None:
    root = site_root("--metrics", "/metrics")
    metrics = root.children[b"metrics"]
    assert isinstance(metrics, MetricsResource)
    assert metrics.collector._services == {
        "/echo": root.children[b"echo"].service,
        "/chat": root.children[b"chat"].service,
    }
    text = scrape(metrics)
    assert 'sockjs_sessions_open{service="/echo",transport="websocket"} 0.0' in text
    assert 'sockjs_sessions_open{service="/chat",transport="xhr-polling"} 0.0' in text


def test_a_factory_at_a_deep_prefix_and_metrics_deep_too() -> None:
    root = site_root(
        "--factory", "twisted.protocols.wire.Echo", "--prefix", "/a/b", "--metrics", "/ops/m"
    )
    metrics = root.children[b"ops"].children[b"m"]
    assert list(metrics.collector._services) == ["/a/b"]
    assert metrics.collector._services["/a/b"] is root.children[b"a"].children[b"b"].service


def test_no_metrics_without_the_flag() -> None:
    assert b"metrics" not in site_root().children


@pytest.mark.parametrize(
    "argv",
    [
        ["--metrics", "metrics"],
        ["--metrics", "/"],
        ["--metrics", "/echo"],
        ["--metrics", "/chat/"],
        ["--factory", "twisted.protocols.wire.Echo", "--metrics", "/metrics"],
    ],
)
def test_paths_that_cannot_be_served(argv: list[str]) -> None:
    with pytest.raises(UsageError, match="--metrics"):
        tap.Options(reactor=MemoryReactorClock()).parseOptions(argv)
