"""
The lean request path (txsockjs._web.lean) on real sockets: pipelined requests on one
keep-alive connection, answered in order, the lean ones and the ordinary ones mixed.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted

from .clients import with_timeout
from .servers import Harness
from .test_limits import connect_raw


def request(path: bytes, body: bytes = b"", extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %d\r\n\r\n%s" % (
        path,
        extra,
        len(body),
        body,
    )


async def opened(reactor: Any, port: int, poll: bytes) -> Any:
    """A raw connection that opened a session with the xhr poll at ``poll``."""
    client = await connect_raw(reactor, port)
    client.transport.write(request(poll))
    await with_timeout(reactor, client.until(lambda data: data.endswith(b"o\n\r\n0\r\n\r\n")))
    return client


@pytest_twisted.ensureDeferred
async def test_pipelined_sends_and_a_closing_one(harness: Harness, reactor: Any) -> None:
    port = harness.port.getHost().port
    receiver = await opened(reactor, port, b"/echo/000/pipe/xhr")
    sender = await connect_raw(reactor, port)
    sender.transport.write(
        request(b"/echo/000/pipe/xhr_send", b'["a"]')
        + request(b"/echo/000/pipe/xhr_send", b'["b"]')
        + request(b"/echo/000/pipe/xhr_send", b'["c"]', b"Connection: close\r\n")
    )
    await with_timeout(reactor, sender.closed)
    assert sender.data.count(b"HTTP/1.1 204 No Content\r\n") == 3, sender.data
    assert sender.data.count(b"Connection: close\r\n") == 1
    receiver.data = b""
    receiver.transport.write(request(b"/echo/000/pipe/xhr"))
    await with_timeout(reactor, receiver.until(lambda data: data.endswith(b"\r\n0\r\n\r\n")))
    assert b'a["a","b","c"]\n' in receiver.data, receiver.data
    receiver.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_send_behind_a_waiting_poll(harness: Harness, reactor: Any) -> None:
    """The send waits for the poll's answer (here a heartbeat), then is answered."""
    port = harness.port.getHost().port
    client = await opened(reactor, port, b"/heartbeat/000/hol/xhr")
    client.data = b""
    client.transport.write(
        request(b"/heartbeat/000/hol/xhr") + request(b"/heartbeat/000/hol/xhr_send", b'["x"]')
    )
    await with_timeout(reactor, client.until(lambda data: b"204 No Content" in data))
    poll, _, sent = client.data.partition(b"HTTP/1.1 204 No Content\r\n")
    assert poll.startswith(b"HTTP/1.1 200 OK\r\n") and poll.endswith(b"h\n\r\n0\r\n\r\n"), poll
    assert sent.endswith(b"\r\n\r\n")
    client.transport.loseConnection()
