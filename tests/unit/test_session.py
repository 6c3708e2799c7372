"""The session as the wrapped protocol's transport: the Twisted contract."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.interfaces import (
    IConsumer,
    IPullProducer,
    IPushProducer,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txsockjs import ISockJSTransport, SockJSFactory, broadcast

from .conftest import Service
from .fakehttp import Exchange, FakeHTTP


def open_session(service: Service, path: str = "/s/0/s/xhr", **kwargs: Any) -> Any:
    service.http.post(path, **kwargs)
    return service.protocol.transport


def test_session_provides_the_transport_interfaces(service: Service) -> None:
    transport = open_session(service)
    for interface in (ITransport, IConsumer, IPushProducer, ISockJSTransport):
        assert verifyObject(interface, transport)


def test_connection_facts(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service()
    transport = open_session(
        service,
        "/s/000/zq9x/xhr?x=1",
        headers={"User-Agent": "ua", "Cookie": "secret=1", "Origin": "o", "X-Other": "no"},
    )
    assert transport.getPeer() == IPv4Address("TCP", "10.0.0.1", 40000)
    assert transport.headers["user-agent"] == "ua"
    assert transport.headers["origin"] == "o"
    assert "cookie" not in transport.headers
    assert "x-other" not in transport.headers
    assert transport.url == "/s/000/*/xhr?x=1"
    assert transport.path == "/s/000/*/xhr"
    assert transport.prefix == "/s"
    assert transport.transportName == "xhr-polling"
    assert transport.state == "open" and transport.readable and transport.writable
    assert "zq9x" not in repr(transport)
    exposed = [str(getattr(transport, name, "")) for name in ISockJSTransport.names(all=True)]
    assert not any("zq9x" in value for value in exposed)


def test_cookies_only_when_asked(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(expose_cookies=True)
    transport = open_session(service, headers={"Cookie": "a=1"})
    assert transport.headers["cookie"] == "a=1"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("203.0.113.9", IPv4Address("TCP", "203.0.113.9", 0)),
        ("198.51.100.1, 203.0.113.9, 10.0.0.7", IPv4Address("TCP", "203.0.113.9", 0)),
        ("2001:db8::1", IPv6Address("TCP", "2001:db8::1", 0)),
        ("garbage", IPv4Address("TCP", "10.0.0.1", 40000)),
    ],
)
def test_trusted_proxy_forwarded_for(make_service, forwarded: str, expected: Any) -> None:  # type: ignore[no-untyped-def]
    service = make_service(trusted_proxies=["10.0.0.0/8"])
    transport = open_session(service, headers={"X-Forwarded-For": forwarded})
    assert transport.getPeer() == expected


def test_untrusted_peer_forwarded_for_is_ignored(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(trusted_proxies=["192.168.0.0/16"])
    transport = open_session(service, headers={"X-Forwarded-For": "203.0.113.9"})
    assert transport.getPeer().host == "10.0.0.1"


def test_split_utf8_reaches_client_whole(service: Service) -> None:
    transport = open_session(service)
    euro = "€".encode()
    transport.write(b"a" + euro[:1])
    transport.write(euro[1:2])
    transport.write(euro[2:] + b"b")
    service.turn()
    body = service.http.post("/s/0/s/xhr").response.body
    assert body == b'a["a","\\u20acb"]\n'


def test_invalid_utf8_closes_with_1007(service: Service) -> None:
    transport = open_session(service)
    transport.write(b"ok")
    transport.write(b"\xff\xfe")
    transport.write(b"after")
    service.turn()
    assert service.http.post("/s/0/s/xhr").response.body == b'a["ok"]\n'
    closed = service.http.post("/s/0/s/xhr").response.body
    assert closed == b'c[1007,"Invalid UTF-8 written by the application"]\n'


def test_write_rejects_str(service: Service) -> None:
    transport = open_session(service)
    with pytest.raises(TypeError):
        transport.write("text")


def test_writesequence_is_one_message(service: Service) -> None:
    transport = open_session(service)
    transport.writeSequence([b"a", b"b"])
    service.turn()
    assert service.http.post("/s/0/s/xhr").response.body == b'a["ab"]\n'


def test_close_with_code_and_end(service: Service) -> None:
    transport = open_session(service)
    transport.close(4001, "bye")
    assert transport.state == "closing"
    assert service.http.post("/s/0/s/xhr").response.body == b'c[4001,"bye"]\n'
    assert transport.state == "closed"
    assert service.protocol.lost[0].check(ConnectionDone)
    service.http.post("/s/0/t/xhr")
    with pytest.raises(ValueError):
        service.protocols[1].transport.close(2000, "bad")  # type: ignore[union-attr]
    service.protocols[1].transport.end()  # type: ignore[union-attr]
    assert service.http.post("/s/0/t/xhr").response.body == b'c[1000,"Normal closure"]\n'


def test_abort_drops_queue_and_loses_once(service: Service) -> None:
    transport = open_session(service)
    transport.write(b"dropped")
    transport.abortConnection()
    transport.abortConnection()
    transport.loseConnection()
    assert len(service.protocol.lost) == 1
    assert service.protocol.lost[0].check(ConnectionAborted)
    service.turn()
    assert service.http.post("/s/0/s/xhr").response.body == b'c[3000,"Go away!"]\n'
    service.idle()


def test_writes_after_close_are_ignored(service: Service) -> None:
    transport = open_session(service)
    transport.loseConnection()
    transport.write(b"late")
    service.turn()
    assert service.http.post("/s/0/s/xhr").response.body == b'c[3000,"Go away!"]\n'


class Raising(Protocol):
    def dataReceived(self, data: bytes) -> None:
        raise RuntimeError("boom")


def test_protocol_exception_closes_only_its_session(service: Service) -> None:
    service.resource.service.factory = Factory.forProtocol(Raising)
    service.http.post("/s/0/bad/xhr")
    service.resource.service.factory = service.factory
    open_session(service, "/s/0/good/xhr")
    assert service.http.send("/s/0/bad/xhr_send", "x").response.status == 204
    assert service.http.post("/s/0/bad/xhr").response.body == b'c[1011,"Server error"]\n'
    assert service.http.send("/s/0/good/xhr_send", "y").response.status == 204
    assert service.protocol.received == [b"y"]


def test_factory_refusal(service: Service) -> None:
    class Refusing(Factory):
        def buildProtocol(self, addr: Any) -> None:
            return None

    service.resource.service.factory = Refusing()
    assert service.http.post("/s/0/r/xhr").response.body == b"o\n"
    assert service.http.post("/s/0/r/xhr").response.body == b'c[3003,"Connection refused"]\n'
    service.idle()


def test_max_sessions(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(max_sessions=2)
    service.http.post("/s/0/a/xhr")
    service.http.post("/s/0/b/xhr")
    assert service.http.post("/s/0/c/xhr").response.status == 503
    assert not service.http.post("/s/0/a/xhr").answered(), "a known session is served"
    service.clock.advance(10)
    assert service.http.post("/s/0/c/xhr").response.status == 200


@implementer(IPushProducer)
class PushProducer:
    def __init__(self) -> None:
        self.events: list[str] = []

    def pauseProducing(self) -> None:
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


def test_push_producer_paused_at_high_resumed_below_low(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(high_watermark=1000, low_watermark=100)
    transport = open_session(service)
    producer = PushProducer()
    transport.registerProducer(producer, True)
    transport.write(b"x" * 500)
    assert producer.events == []
    transport.write(b"x" * 600)
    assert producer.events == ["pause"]
    service.turn()
    assert producer.events == ["pause"], "no receiver yet: the queue stays"
    poll = service.http.post("/s/0/s/xhr")
    assert poll.response.body.startswith(b'a["xxx')
    assert producer.events == ["pause", "resume"]
    transport.loseConnection()
    service.http.post("/s/0/s/xhr")
    assert producer.events == ["pause", "resume", "stop"]


def test_slow_http_client_pauses_producer(service: Service) -> None:
    transport = open_session(service, "/s/0/s/xhr_streaming")
    producer = PushProducer()
    transport.registerProducer(producer, True)
    stream = service.http.post("/s/0/t/xhr_streaming")
    slow = service.protocols[1].transport
    slow.registerProducer(producer, True)
    stream.transport.producer.pauseProducing()  # the socket buffer is full
    assert producer.events == ["pause"]
    stream.transport.producer.resumeProducing()
    assert producer.events == ["pause", "resume"]


@implementer(IPullProducer)
class PullProducer:
    def __init__(self, transport: Any, chunks: int) -> None:
        self.transport = transport
        self.left = chunks
        self.calls = 0

    def resumeProducing(self) -> None:
        self.calls += 1
        if self.left:
            self.left -= 1
            self.transport.write(b"chunk")
        else:
            self.transport.unregisterProducer()

    def stopProducing(self) -> None:
        self.left = 0


def test_pull_producer_is_asked_again_after_each_flush(service: Service) -> None:
    stream = service.http.post("/s/0/s/xhr_streaming")
    transport = service.protocol.transport
    producer = PullProducer(transport, 3)
    transport.registerProducer(producer, False)
    assert producer.calls == 1
    for _ in range(5):
        service.turn()
    assert stream.response.chunks[2:] == [b'a["chunk"]\n'] * 3
    assert producer.calls == 4
    assert transport._producer is None


def test_pull_producer_without_receiver_waits(service: Service) -> None:
    transport = open_session(service)
    producer = PullProducer(transport, 10)
    transport.registerProducer(producer, False)
    service.turn()
    assert producer.calls == 1, "nobody reads: the producer is not asked again"
    poll = service.http.post("/s/0/s/xhr")
    assert poll.response.body == b'a["chunk"]\n'
    assert producer.calls == 2


def test_pause_reading_holds_sends(service: Service) -> None:
    transport = open_session(service)
    transport.pauseProducing()
    sending = service.http.send("/s/0/s/xhr_send", "a", "b")
    assert not sending.answered()
    assert service.protocol.received == []
    transport.resumeProducing()
    assert service.protocol.received == [b"a", b"b"]
    assert sending.response.status == 204


def test_broadcast_encodes_once(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service()
    for name in ("a", "b"):
        service.http.post(f"/s/0/{name}/xhr")
    broadcast([p.transport for p in service.protocols], "hi €")  # type: ignore[misc]
    service.turn()
    for name in ("a", "b"):
        assert service.http.post(f"/s/0/{name}/xhr").response.body == b'a["hi \\u20ac"]\n'


def test_factory_refuses_large_bodies_while_streaming_in() -> None:
    factory = SockJSFactory(Factory.forProtocol(Protocol), max_message_bytes=100)
    http = FakeHTTP(factory.resource)
    http.site = factory
    big = http.post("/0/s/xhr_send", b"x" * 1000, headers={"Content-Length": "1000"})
    assert big.response.status == 413
    assert big.transport.disconnecting
    exchange = Exchange(
        factory,
        b"POST /0/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    exchange.channel.dataReceived(b"40\r\n" + b"x" * 64 + b"\r\n")
    assert not exchange.answered()
    exchange.channel.dataReceived(b"40\r\n" + b"x" * 64 + b"\r\n")
    assert exchange.response.status == 413
    factory.stopFactory()


class RaisingOnConnect(Protocol):
    def connectionMade(self) -> None:
        raise RuntimeError("boom")


def test_protocol_raising_in_connection_made_closes_with_1011(service: Service) -> None:
    service.resource.service.factory = Factory.forProtocol(RaisingOnConnect)
    assert service.http.post("/s/0/r/xhr").response.body == b"o\n"
    assert service.http.post("/s/0/r/xhr").response.body == b'c[1011,"Server error"]\n'
    service.idle()
