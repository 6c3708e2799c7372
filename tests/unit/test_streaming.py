"""xhr-streaming, eventsource, htmlfile: prelude, one chunk per frame, response_limit."""

from __future__ import annotations

import re

from .conftest import Service


def test_xhr_streaming_chunks(service: Service) -> None:
    stream = service.http.post("/s/0/s/xhr_streaming", headers={"Origin": "test"})
    response = stream.response
    assert response.chunks[0] == b"h" * 2048 + b"\n"
    assert response.chunks[1] == b"o\n"
    assert response.header("access-control-allow-origin") == "test"
    service.http.send("/s/0/s/xhr_send", "x")
    service.turn()
    service.http.send("/s/0/s/xhr_send", "y")
    service.turn()
    assert stream.response.chunks[2:] == [b'a["x"]\n', b'a["y"]\n']
    assert not stream.response.complete


def test_response_limit_counts_frames_not_prelude(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(response_limit=4096)
    stream = service.http.post("/s/0/s/xhr_streaming")
    for i in range(31):
        assert not stream.response.complete, i
        service.http.send("/s/0/s/xhr_send", "x" * 128)
        service.turn()
    response = stream.response
    assert response.complete
    assert len(response.chunks) == 2 + 31
    # The session lives on; the next request continues it.
    follow = service.http.post("/s/0/s/xhr_streaming")
    assert follow.response.chunks[1:] == []
    service.http.send("/s/0/s/xhr_send", "z")
    service.turn()
    assert follow.response.chunks[1:] == [b'a["z"]\n']


def test_streaming_heartbeats(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(heartbeat_delay=5, disconnect_delay=1)
    stream = service.http.post("/s/0/s/xhr_streaming")
    service.clock.pump([1] * 16)
    assert stream.response.chunks[2:] == [b"h\n"] * 3
    assert service.protocol.lost == []


def test_close_ends_stream_after_queued_messages(service: Service) -> None:
    stream = service.http.post("/s/0/s/xhr_streaming")
    service.protocol.transport.write(b"bye")  # type: ignore[union-attr]
    service.protocol.transport.loseConnection()  # type: ignore[union-attr]
    response = stream.response
    assert response.chunks[1:] == [b"o\n", b'a["bye"]\n', b'c[3000,"Go away!"]\n']
    assert response.complete


def test_http10_stream_closes_connection(service: Service) -> None:
    stream = service.http.request("POST", "/s/0/s/xhr_streaming", version="HTTP/1.0")
    service.protocol.transport.loseConnection()  # type: ignore[union-attr]
    assert stream.transport.disconnecting
    response = stream.response
    assert "transfer-encoding" not in response.headers
    assert response.body.endswith(b'o\nc[3000,"Go away!"]\n')


def test_eventsource(service: Service) -> None:
    stream = service.http.get("/s/0/e/eventsource")
    response = stream.response
    assert response.header("content-type") == "text/event-stream"
    assert response.chunks[:2] == [b"\r\n", b"data: o\r\n\r\n"]
    service.http.send("/s/0/e/xhr_send", "  \u0000\n\r ", "100%")
    service.turn()
    assert stream.response.chunks[2] == (b'data: a["  \\u0000\\n\\r ","100%25"]\r\n\r\n')


def test_htmlfile(service: Service) -> None:
    stream = service.http.get("/s/0/h/htmlfile?c=%63allback")
    response = stream.response
    assert response.header("content-type") == "text/html; charset=UTF-8"
    first = response.chunks[0]
    assert len(first) > 1024
    assert b"var c = parent.callback;" in first
    assert response.chunks[1] == b'<script>\np("o");\n</script>\r\n'
    service.http.send("/s/0/h/xhr_send", "</script><script>alert(1)</script>")
    service.turn()
    frame = stream.response.chunks[2]
    assert re.fullmatch(rb"<script>\np\([^<>&]*\);\n</script>\r\n", frame)


def test_another_stream_gets_2010(service: Service) -> None:
    first = service.http.post("/s/0/s/xhr_streaming")
    second = service.http.post("/s/0/s/xhr_streaming")
    assert second.response.chunks[1:] == [b'c[2010,"Another connection still open"]\n']
    assert second.response.complete
    assert not first.response.complete


def test_answers_to_a_send_leave_at_once_without_a_timer(service: Service) -> None:
    stream = service.http.post("/s/0/s/xhr_streaming")
    timers = len(service.clock.getDelayedCalls())
    service.http.send("/s/0/s/xhr_send", "a", "b")
    # No reactor turn: the echo of both messages left in one frame while handling the send.
    assert stream.response.chunks[2:] == [b'a["a","b"]\n']
    assert len(service.clock.getDelayedCalls()) == timers


def test_streamed_frames_keep_chunking_and_http10(service: Service) -> None:
    """Frames written past Request.write are still one chunk each (HTTP/1.1) or raw (1.0)."""
    chunked = service.http.post("/s/0/a/xhr_streaming")
    plain = service.http.request("POST", "/s/0/b/xhr_streaming", version="HTTP/1.0")
    for name in ("a", "b"):
        service.http.send(f"/s/0/{name}/xhr_send", "é" * 3)
    assert chunked.response.chunks[2:] == [b'a["\\u00e9\\u00e9\\u00e9"]\n']
    assert plain.response.body.endswith(b'o\na["\\u00e9\\u00e9\\u00e9"]\n')
    for protocol in service.protocols:
        protocol.transport.loseConnection()  # type: ignore[union-attr]
    assert chunked.response.complete
    assert plain.transport.disconnecting
