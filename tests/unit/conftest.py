"""Fixtures for unit tests: a SockJS service on an in-memory Site, driven by a Clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from txsockjs import SockJSResource

from .fakehttp import FakeHTTP


class Recorder(Protocol):
    """Echoes, and records what happens to it."""

    instances: list[Recorder]
    echo = True

    def connectionMade(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Failure] = []
        self.instances.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        if self.echo:
            assert self.transport is not None
            self.transport.write(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost.append(reason)


class Service:
    """A SockJS service mounted at /s, with its clock, its protocols and an HTTP client."""

    def __init__(self, lean: bool = False, **options: Any):
        self.clock = Clock()
        self.protocols: list[Recorder] = []
        recorder = type("R", (Recorder,), {"instances": self.protocols})
        self.factory = Factory.forProtocol(recorder)
        self.resource = SockJSResource(self.factory, reactor=self.clock, **options)
        root = Resource()
        root.putChild(b"s", self.resource)
        self.http = FakeHTTP(root, lean=lean)

    @property
    def protocol(self) -> Recorder:
        assert len(self.protocols) == 1, self.protocols
        return self.protocols[0]

    def turn(self) -> None:
        """Let the reactor turn end: queued writes are flushed."""
        self.clock.advance(0)

    def idle(self) -> None:
        """Every session closed and expired: no timer and no session is left."""
        self.clock.advance(3600)
        assert len(self.resource.service) == 0
        assert self.clock.getDelayedCalls() == []


@pytest.fixture(params=[False, True], ids=["site", "lean"])
def make_service(request: pytest.FixtureRequest) -> Iterator[Callable[..., Service]]:
    """
    Makes services; each test runs twice: through a plain ``Site`` and through a
    ``SockJSSite``, whose channels answer what they recognise on the lean request path.
    """
    made: list[Service] = []
    lean: bool = request.param

    def make(**options: Any) -> Service:
        service = Service(lean=lean, **options)
        made.append(service)
        return service

    yield make
    for service in made:
        service.resource.close()
        assert service.clock.getDelayedCalls() == [], "a DelayedCall outlived its service"
        assert len(service.resource.service) == 0, "a session outlived its service"


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()
