"""
Bounded memory for clients that do not read: messages wait in the session's queue while the
receiver's connection is full, reading from the client stops above the high watermark, and
a session over ``max_queued_bytes`` is closed with its queue dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.error import ConnectionLost

from .conftest import Service
from .test_websocket import Client, frame

LIMITS = {"high_watermark": 1000, "low_watermark": 100, "max_queued_bytes": 5000}


def session_of(service: Service) -> Any:
    return service.protocol.transport


def test_full_connection_keeps_messages_in_the_queue(make_service: Callable[..., Service]) -> None:
    service = make_service(**LIMITS)
    client = Client(service)
    tcp = client.exchange.transport
    tcp.producer.pauseProducing()  # the socket buffer is full
    before = len(tcp.value())
    client.send(frame(json.dumps(["x" * 300]).encode()))
    assert len(tcp.value()) == before, "nothing is written to a full connection"
    assert tcp.producerState == "producing", "under the high watermark: still reading"
    client.send(frame(json.dumps(["y" * 800]).encode()))
    assert tcp.producerState == "paused", "over the high watermark: reading stops"
    tcp.producer.resumeProducing()
    assert tcp.producerState == "producing"
    assert client.texts()[1:] == [b'a["%s","%s"]' % (b"x" * 300, b"y" * 800)]


def test_messages_read_while_paused_wait_and_are_delivered_in_order(
    make_service: Callable[..., Service],
) -> None:
    service = make_service(**LIMITS)
    client = Client(service)
    tcp = client.exchange.transport
    tcp.producer.pauseProducing()
    big = frame(json.dumps(["b" * 1200]).encode())
    # One read holding more frames than the watermark lets through.
    client.send(big + frame(b'["after1"]') + frame(b'["after2"]'))
    assert service.protocol.received == [b"b" * 1200], "the rest waits for the client to read"
    tcp.producer.resumeProducing()
    assert service.protocol.received == [b"b" * 1200, b"after1", b"after2"]
    service.turn()
    messages = [json.loads(text[1:]) for text in client.texts()[1:]]
    assert sum(messages, []) == ["b" * 1200, "after1", "after2"]


def test_a_client_that_never_reads_is_closed_and_its_queue_dropped(
    make_service: Callable[..., Service],
) -> None:
    service = make_service(**LIMITS)
    client = Client(service)
    tcp = client.exchange.transport
    tcp.producer.pauseProducing()
    transport = session_of(service)
    for _ in range(20):  # the application pushes without a producer
        transport.write(b"z" * 400)
    service.turn()
    assert client.close_frame() == (1008, b"Send buffer full")
    assert b"zzz" not in tcp.value(), "the queue was dropped, not written"
    assert service.protocol.lost[0].check(ConnectionLost)
    assert transport.state == "closed"


def test_frames_are_bounded_by_the_high_watermark(make_service: Callable[..., Service]) -> None:
    service = make_service(**LIMITS)
    service.http.post("/s/0/a/xhr")
    transport = session_of(service)
    for index in range(6):
        transport.write(b"%d" % index * 400)
    service.turn()
    first = service.http.post("/s/0/a/xhr").response.frames()
    second = service.http.post("/s/0/a/xhr").response.frames()
    assert [len(json.loads(f[1:])) for f in first + second] == [3, 3]


def test_xhr_send_waits_while_the_streaming_client_does_not_read(
    make_service: Callable[..., Service],
) -> None:
    service = make_service(**LIMITS)
    stream = service.http.post("/s/0/a/xhr_streaming")
    stream.transport.producer.pauseProducing()  # the receiving connection is full
    first = service.http.send("/s/0/a/xhr_send", "x" * 1200)
    assert first.response.status == 204, "delivered: the echo is queued"
    held = service.http.send("/s/0/a/xhr_send", "second")
    assert not held.answered(), "over the high watermark: the send waits"
    assert service.protocol.received == [b"x" * 1200]
    stream.transport.producer.resumeProducing()
    assert service.protocol.received == [b"x" * 1200, b"second"]
    assert held.response.status == 204


def test_sends_beyond_the_inbox_limit_are_refused(make_service: Callable[..., Service]) -> None:
    service = make_service(**LIMITS)
    stream = service.http.post("/s/0/a/xhr_streaming")
    stream.transport.producer.pauseProducing()
    service.http.send("/s/0/a/xhr_send", "x" * 1200)
    held = [service.http.send("/s/0/a/xhr_send", "h" * 1000) for _ in range(6)]
    assert [exchange.answered() for exchange in held] == [False] * 6
    refused = service.http.send("/s/0/a/xhr_send", "more")
    assert refused.response.status == 503
    stream.transport.producer.resumeProducing()
    for _ in range(10):  # each turn's flush lets the next messages in
        service.turn()
    assert [exchange.response.status for exchange in held] == [204] * 6
    assert len(service.protocol.received) == 7


def test_polling_session_over_the_limit_is_closed(make_service: Callable[..., Service]) -> None:
    service = make_service(**LIMITS)
    service.http.post("/s/0/a/xhr")
    transport = session_of(service)
    for _ in range(20):
        transport.write(b"q" * 400)
    service.turn()
    assert service.http.post("/s/0/a/xhr").response.body == b'c[1008,"Send buffer full"]\n'


def test_one_large_message_alone_is_not_an_overflow(make_service: Callable[..., Service]) -> None:
    service = make_service(**LIMITS)
    client = Client(service)
    tcp = client.exchange.transport
    tcp.producer.pauseProducing()
    session_of(service).write(b"L" * 8000)  # more than max_queued_bytes, in one message
    service.turn()
    assert client.close_frame() is None
    tcp.producer.resumeProducing()
    assert client.texts()[-1] == b'a["' + b"L" * 8000 + b'"]'
