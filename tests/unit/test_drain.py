"""
Drain: stopping a service refuses new sessions, sends every session its queued messages and
then ``c[1001,"Server shutting down"]``, and fires when all are closed or at the deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from zope.interface.verify import verifyObject

from txsockjs import SockJSMultiFactory, SockJSResource
from txsockjs._core.service import DRAINING
from txsockjs.tap import _CloseOnStop

from .conftest import Recorder, Service
from .fakehttp import FakeHTTP
from .test_websocket import HANDSHAKE_HEADERS, Client

MakeService = Callable[..., Service]
SHUTDOWN_FRAME = b'c[1001,"Server shutting down"]'


def fired(d: Deferred[Any]) -> bool:
    """Whether ``d`` has fired, and not with a failure."""
    results: list[Any] = []

    def keep(result: Any) -> Any:
        results.append(result)
        return result

    d.addBoth(keep)
    assert not (results and isinstance(results[0], Failure)), results
    return bool(results)


def write(service: Service, *messages: bytes, index: int = 0) -> None:
    transport: Any = service.protocols[index].transport
    for message in messages:
        transport.write(message)


def test_the_service_is_an_iservice(service: Service) -> None:
    assert verifyObject(IService, service.resource.service)


def test_websocket_gets_its_queued_messages_then_the_close_frame(service: Service) -> None:
    client = Client(service)
    write(service, b"m1", b"m2")  # queued: the reactor turn has not ended
    d = service.resource.drain()
    assert client.texts() == [b"o", b'a["m1","m2"]', SHUTDOWN_FRAME]
    assert client.close_frame() == (1001, b"Server shutting down")
    assert service.protocol.lost[0].check(ConnectionDone)
    assert fired(d)
    assert len(service.resource.service) == 0
    refused = service.http.get("/s/000/new/websocket", headers=HANDSHAKE_HEADERS).response
    assert (refused.status, refused.body) == (503, b"Server shutting down.\n")
    assert service.resource.service.refusals[DRAINING] == 1


def test_raw_websocket_gets_its_queued_messages_then_1001(service: Service) -> None:
    client = Client(service, "/s/websocket")
    write(service, b"one", b"two")
    d = service.resource.drain()
    assert client.texts() == [b"one", b"two"]
    assert client.close_frame() == (1001, b"Server shutting down")
    assert fired(d)


def test_polling_client_gets_its_queued_messages_then_the_close_frame(
    service: Service,
) -> None:
    assert service.http.post("/s/000/p/xhr").response.body == b"o\n"
    write(service, b"m1", b"m2")
    d = service.resource.drain()
    assert not fired(d), "the client has not polled yet"
    refused = service.http.post("/s/000/other/xhr").response
    assert (refused.status, refused.body) == (503, b"Server shutting down.\n")
    assert service.resource.service.refusals[DRAINING] == 1
    assert service.http.post("/s/000/p/xhr").response.body == b'a["m1","m2"]\n'
    assert not fired(d)
    assert service.protocol.lost == []
    assert service.http.post("/s/000/p/xhr").response.body == SHUTDOWN_FRAME + b"\n"
    assert service.protocol.lost[0].check(ConnectionDone)
    assert fired(d)


def test_waiting_poll_and_stream_are_answered_at_once(service: Service) -> None:
    service.http.post("/s/000/p/xhr")
    poll = service.http.post("/s/000/p/xhr")
    stream = service.http.post("/s/000/s/xhr_streaming")
    write(service, b"to-stream", index=1)
    d = service.resource.drain()
    assert poll.response.body == SHUTDOWN_FRAME + b"\n"
    assert stream.response.chunks[1:] == [b"o\n", b'a["to-stream"]\n', SHUTDOWN_FRAME + b"\n"]
    assert stream.response.complete
    assert fired(d)


def test_the_deadline_closes_the_sessions_left(make_service: MakeService) -> None:
    service = make_service(drain_timeout=2, disconnect_delay=30, first_poll_deadline=30)
    service.http.post("/s/000/p/xhr")
    write(service, b"never read")
    d = service.resource.service.stopService()
    service.clock.advance(1.9)
    assert not fired(d)
    assert service.protocol.lost == []
    service.clock.advance(0.1)
    assert fired(d)
    assert service.protocol.lost[0].check(ConnectionLost)
    assert service.clock.getDelayedCalls() == []


def test_a_session_expiring_during_the_drain_ends_it(make_service: MakeService) -> None:
    service = make_service(drain_timeout=60, disconnect_delay=1)
    service.http.post("/s/000/p/xhr")
    d = service.resource.drain()
    service.clock.advance(1.3)
    assert service.protocol.lost[0].check(ConnectionLost)
    assert fired(d)
    assert service.clock.getDelayedCalls() == []


def test_draining_nothing_fires_at_once_and_twice_is_one_drain(make_service: MakeService) -> None:
    service = make_service()
    assert fired(service.resource.drain())
    service.resource.service.startService()
    service.http.post("/s/000/p/xhr")
    first, second = service.resource.drain(), service.resource.drain()
    assert not fired(first) and not fired(second)
    service.clock.advance(10)
    assert fired(first) and fired(second)


def test_a_started_again_service_opens_sessions(make_service: MakeService) -> None:
    service = make_service()
    parent = MultiService()
    service.resource.service.setServiceParent(parent)
    parent.startService()
    service.http.post("/s/000/p/xhr")
    stopped = parent.stopService()
    service.clock.advance(10)
    assert fired(stopped)
    assert service.http.post("/s/000/q/xhr").response.status == 503
    parent.startService()
    assert service.http.post("/s/000/q/xhr").response.body == b"o\n"


def test_close_during_a_drain_ends_it(service: Service) -> None:
    service.http.post("/s/000/p/xhr")
    d = service.resource.drain()
    service.resource.close()
    assert fired(d)
    assert service.protocol.lost[0].check(ConnectionLost)


def test_the_drain_waits_for_the_reactors_pending_output() -> None:
    reactor = MemoryReactorClock()
    protocols: list[Recorder] = []
    factory = Factory.forProtocol(type("R", (Recorder,), {"instances": protocols}))
    resource = SockJSResource(factory, reactor=reactor, drain_timeout=5)
    root = Resource()
    root.putChild(b"s", resource)
    http = FakeHTTP(root)
    stream = http.post("/s/000/s/xhr_streaming")
    pending = object()
    reactor.writers.add(pending)  # type: ignore[attr-defined]
    d = resource.drain()
    assert stream.response.complete, "the close frame is written at once"
    reactor.advance(0.5)
    assert not fired(d), "some output has not left the process yet"
    reactor.writers.discard(pending)  # type: ignore[attr-defined]
    reactor.advance(0.02)
    assert fired(d)
    assert [call for call in reactor.getDelayedCalls() if call.active()] == []
    # Output that never leaves is waited for until the deadline only.
    resource.service.startService()
    http.post("/s/000/t/xhr_streaming")
    reactor.writers.add(pending)  # type: ignore[attr-defined]
    d = resource.drain()
    reactor.advance(4.9)
    assert not fired(d)
    reactor.advance(0.2)
    assert fired(d)


def test_twistd_stops_by_draining(service: Service) -> None:
    client = Client(service)
    write(service, b"last words")
    stopping = _CloseOnStop([service.resource]).stopService()
    assert client.texts() == [b"o", b'a["last words"]', SHUTDOWN_FRAME]
    assert fired(stopping)

    service.resource.service.startService()
    service.http.post("/s/000/p/xhr")
    stopping = _CloseOnStop([service.resource]).stopService()
    assert not fired(stopping), "the polling client has not come back"
    assert service.http.post("/s/000/p/xhr").response.body == SHUTDOWN_FRAME + b"\n"
    assert fired(stopping)


def test_a_multi_factory_drains_every_service() -> None:
    from twisted.internet.task import Clock

    clock = Clock()
    site = SockJSMultiFactory(reactor=clock)
    protocols: list[Recorder] = []
    factory = Factory.forProtocol(type("R", (Recorder,), {"instances": protocols}))
    site.addFactory(factory, "/a")
    site.addFactory(factory, "/b")
    http = FakeHTTP(site.resource)  # type: ignore[arg-type]
    http.post("/a/000/x/xhr")
    http.post("/b/000/y/xhr")
    d = site.drain()
    assert http.post("/a/000/x/xhr").response.body == SHUTDOWN_FRAME + b"\n"
    assert not fired(d)
    assert http.post("/b/000/y/xhr").response.body == SHUTDOWN_FRAME + b"\n"
    assert fired(d)


def test_info_answers_503_while_draining(service: Service) -> None:
    """A load balancer's health check on /info takes a draining process out by itself."""
    assert service.http.get("/s/info").response.status == 200
    service.http.post("/s/0/a/xhr")
    service.resource.drain()
    answer = service.http.get("/s/info").response
    assert (answer.status, answer.body) == (503, b"Server shutting down.\n")
