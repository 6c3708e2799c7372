"""Websocket transports in memory: handshake checks, the frame fast path, autobahn's path."""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import pytest
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from .conftest import Service

HANDSHAKE_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
}


def frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    length = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 65536:
        head += struct.pack("!BH", 0x80 | 126, length)
    else:
        head += struct.pack("!BQ", 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Server frames (unmasked): (opcode, payload)."""
    frames = []
    while len(data) >= 2:
        opcode = data[0] & 0x0F
        length = data[1] & 0x7F
        start = 2
        if length == 126:
            length = struct.unpack("!H", data[2:4])[0]
            start = 4
        elif length == 127:
            length = struct.unpack("!Q", data[2:10])[0]
            start = 10
        frames.append((opcode, data[start : start + length]))
        data = data[start + length :]
    return frames


class Client:
    def __init__(self, service: Service, path: str = "/s/0/0/websocket"):
        self.service = service
        self.exchange = service.http.get(path, headers=HANDSHAKE_HEADERS)
        head, _, self._rest = self.exchange.transport.value().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.exchange.transport.clear()
        self.protocol: Any = self.exchange.transport.protocol

    def send(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.protocol.dataReceived(chunk)

    def frames(self) -> list[tuple[int, bytes]]:
        data = self._rest + self.exchange.transport.value()
        return parse_frames(data)

    def texts(self) -> list[bytes]:
        return [payload for opcode, payload in self.frames() if opcode == 1]

    def close_frame(self) -> tuple[int, bytes] | None:
        for opcode, payload in self.frames():
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0], payload[2:]
        return None


def test_open_and_echo_many_frames_in_one_read(service: Service) -> None:
    client = Client(service)
    assert client.texts() == [b"o"]
    client.send(b"".join(frame(b'["m%d"]' % i) for i in range(5)))
    assert service.protocol.received == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert client.texts()[1:] == [b'a["m0","m1","m2","m3","m4"]']
    assert service.protocol.transport.transportName == "websocket"  # type: ignore[union-attr]


def test_frame_split_across_reads_and_long_frames(service: Service) -> None:
    client = Client(service)
    big = b'["' + b"x" * 70000 + b'"]'
    medium = b'["' + b"y" * 300 + b'"]'
    large = '["' + "\u00e9" * 3000 + '"]'
    data = frame(medium) + frame(large.encode()) + frame(big)
    client.send(data[:3], data[3:200], data[200:])
    assert [len(m) for m in service.protocol.received] == [300, 6000, 70000]
    assert service.protocol.received[1] == "\u00e9".encode() * 3000


def test_fragmented_message_and_ping_take_autobahns_path(service: Service) -> None:
    client = Client(service)
    client.send(frame(b'["ab', fin=False), frame(b"", opcode=9), frame(b'c"]', opcode=0))
    assert service.protocol.received == [b"abc"]
    assert (10, b"") in client.frames()


def test_bare_string_and_empty_messages(service: Service) -> None:
    client = Client(service)
    client.send(frame(b""), frame(b"[]"), frame(b'"single"'))
    assert service.protocol.received == [b"single"]


def test_messages_before_broken_framing_in_one_read_are_delivered(service: Service) -> None:
    """One read: whole messages, then broken framing. Those before it arrive, then 3000."""
    client = Client(service)
    client.send(frame(b'["a"]') + frame(b'["b","c"]') + frame(b"[1]") + frame(b'["d"]'))
    assert service.protocol.received == [b"a", b"b", b"c"]
    assert client.close_frame() == (3000, b"Broken framing.")


def test_a_protocol_that_closes_stops_the_rest_of_the_read(service: Service) -> None:
    """A protocol closing on the first message of a read gets none of the others."""
    client = Client(service)
    service.protocol.dataReceived = lambda data: (  # type: ignore[method-assign]
        service.protocol.received.append(data),
        service.protocol.transport.loseConnection(),
    )
    client.send(frame(b'["a"]') + frame(b'["b"]') + frame(b"[1]"))
    assert service.protocol.received == [b"a"]
    assert client.close_frame() == (3000, b"Go away!")


@pytest.mark.parametrize("payload", [b'["a', b"[1]", b"{}", b"1"])
def test_broken_framing_closes(service: Service, payload: bytes) -> None:
    client = Client(service)
    client.send(frame(payload))
    assert client.close_frame() == (3000, b"Broken framing.")
    assert service.protocol.lost[0].check(ConnectionLost)


def test_invalid_utf8_is_refused_by_autobahn(service: Service) -> None:
    client = Client(service)
    client.send(frame(b'["\xff"]'))
    close = client.close_frame()
    assert close is not None and close[0] == 1007
    assert service.protocol.received == []


def test_message_over_limit_closes_1009(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(max_message_bytes=1000)
    client = Client(service)
    client.send(frame(b'["' + b"x" * 2000 + b'"]')[:500])
    close = client.close_frame()
    assert close is not None and close[0] == 1009


def test_server_close_sends_close_frame_then_websocket_close(service: Service) -> None:
    client = Client(service)
    service.protocol.transport.close(4001, "bye")  # type: ignore[union-attr]
    assert client.texts()[-1] == b'c[4001,"bye"]'
    assert client.close_frame() == (4001, b"bye")
    assert service.protocol.lost[0].check(ConnectionDone)


def test_heartbeat_text_frames(make_service) -> None:  # type: ignore[no-untyped-def]
    service = make_service(heartbeat_delay=2, disconnect_delay=1, websocket_liveness=False)
    client = Client(service)
    service.clock.pump([1] * 5)
    assert client.texts() == [b"o", b"h", b"h"]


def test_websocket_sessions_are_not_looked_up_by_id(service: Service) -> None:
    Client(service, "/s/0/same/websocket")
    Client(service, "/s/0/same/websocket")
    assert len(service.protocols) == 2
    assert service.resource.service.get(b"same") is None


def test_client_close_loses_connection_once(service: Service) -> None:
    client = Client(service)
    client.send(frame(struct.pack("!H", 1000), opcode=8))
    client.exchange.transport.loseConnection()
    client.protocol.connectionLost(Failure(ConnectionDone()))
    assert len(service.protocol.lost) == 1
    service.idle()


def test_raw_websocket(service: Service) -> None:
    client = Client(service, "/s/websocket")
    assert client.texts() == []
    client.send(frame("héllo \uffff".encode()), frame(b'["not json"'))
    assert service.protocol.received == ["héllo \uffff".encode(), b'["not json"']
    assert client.texts() == ["héllo \uffff".encode(), b'["not json"']
    assert service.protocol.transport.transportName == "raw-websocket"  # type: ignore[union-attr]
    service.protocol.transport.loseConnection()  # type: ignore[union-attr]
    assert client.close_frame() == (3000, b"Go away!")


def test_raw_websocket_binary_is_refused(service: Service) -> None:
    client = Client(service, "/s/websocket")
    client.send(frame(b"\x00\x01", opcode=2))
    assert client.close_frame() == (1003, b"Binary messages are not supported.")


def test_non_minimal_length_is_a_protocol_error(service: Service) -> None:
    client = Client(service)
    mask = b"\x00\x00\x00\x00"
    # 126 announces a 16-bit length, which must then be at least 126 (RFC 6455 5.2).
    client.send(bytes([0x81, 0x80 | 126]) + struct.pack("!H", 7) + mask + b'["abc"]')
    close = client.close_frame()
    assert close is not None and close[0] == 1002
    assert service.protocol.received == []


def test_deeply_nested_json_closes_with_broken_framing(service: Service) -> None:
    client = Client(service)
    client.send(frame(b"[" * 200_000))
    client.send(frame(b"{" * 1000))
    assert client.close_frame() == (3000, b"Broken framing.")
    assert service.protocol.lost[0].check(ConnectionLost)


def test_deeply_nested_json_in_xhr_send_is_broken_json(service: Service) -> None:
    service.http.post("/s/0/a/xhr")
    answer = service.http.post("/s/0/a/xhr_send", b"[" * 200_000)
    assert (answer.response.status, answer.response.body) == (500, b"Broken JSON encoding.\n")
    assert service.protocol.transport.state == "open"  # type: ignore[union-attr]
    service.protocol.transport.abortConnection()  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/s/0/0/websocket", "/s/websocket"])
def test_clean_close_by_the_client_is_connection_done(service: Service, path: str) -> None:
    client = Client(service, path)
    client.send(frame(struct.pack("!H", 1000) + b"bye", opcode=8))
    assert client.close_frame() is not None, "the server answers the closing handshake"
    client.protocol.connectionLost(Failure(ConnectionDone()))
    assert len(service.protocol.lost) == 1
    assert service.protocol.lost[0].check(ConnectionDone)


def test_dropped_tcp_is_connection_lost(service: Service) -> None:
    client = Client(service)
    client.protocol.connectionLost(Failure(ConnectionLost()))
    assert service.protocol.lost[0].check(ConnectionLost)


class Raiser(Protocol):
    def dataReceived(self, data: bytes) -> None:
        if data == b"raise":
            raise RuntimeError("application bug")
        assert self.transport is not None
        self.transport.write(data)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("raise", (1011, b"Server error")),
        ("invalid", (1007, b"Invalid UTF-8 written by the application")),
        ("shutdown", (1001, b"Server shutting down")),
        ("app-code", (4321, b"app reason")),
        ("normal", (1000, b"Normal closure")),
    ],
)
def test_raw_websocket_sends_the_chosen_close_code(
    make_service: Any, action: str, expected: tuple[int, bytes]
) -> None:
    service = make_service()
    service.resource.service.factory = Factory.forProtocol(Raiser)
    client = Client(service, "/s/websocket")
    session: Any = client.protocol.session
    if action == "raise":
        client.send(frame(b"raise"))
    elif action == "invalid":
        session.write(b"\xff")
    elif action == "shutdown":
        service.resource.close()
    elif action == "app-code":
        session.close(4321, "app reason")
    else:
        session.end()
    assert client.close_frame() == expected


def test_close_reason_is_cut_to_fit_a_control_frame(service: Service) -> None:
    client = Client(service, "/s/websocket")
    service.protocol.transport.close(4000, "é" * 100)  # type: ignore[union-attr]
    close = client.close_frame()
    assert close is not None and close[0] == 4000
    assert len(close[1]) <= 123 and close[1].decode() == "é" * 61


PONG = frame(b"", opcode=10)


def pings(client: Client) -> int:
    return client.frames().count((9, b""))


@pytest.mark.parametrize("path", ["/s/0/0/websocket", "/s/websocket"])
def test_a_client_that_answers_no_ping_is_dropped(make_service: Any, path: str) -> None:
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=1)
    client = Client(service, path)
    service.clock.advance(1)
    assert (9, b"") in client.frames(), "a ping goes with every heartbeat"
    assert not client.exchange.transport.disconnecting
    service.clock.advance(1)
    assert client.exchange.transport.disconnecting, "no pong within a heartbeat: dropped"
    client.protocol.connectionLost(Failure(ConnectionLost()))
    assert service.protocol.lost[0].check(ConnectionLost)


def test_a_client_that_answers_pings_stays(make_service: Any) -> None:
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=1)
    client = Client(service)
    for _ in range(5):
        service.clock.advance(1)
        client.send(PONG)
    assert not client.exchange.transport.disconnecting
    assert client.texts().count(b"h") == 5


def test_pings_go_every_ping_interval_in_whole_heartbeats(make_service: Any) -> None:
    # 2.5 s at a 1 s heartbeat: a ping with every third heartbeat, an ``h`` with each.
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=2.5)
    client = Client(service)
    seen = []
    for _ in range(7):
        service.clock.advance(1)
        seen.append(pings(client))
        client.send(PONG)
    assert seen == [1, 1, 1, 2, 2, 2, 3]
    assert client.texts().count(b"h") == 7
    assert not client.exchange.transport.disconnecting


def test_the_default_ping_interval_is_25_seconds(make_service: Any) -> None:
    service = make_service(heartbeat_delay=5, disconnect_delay=1)
    client = Client(service)
    service.clock.advance(5)
    assert pings(client) == 1, "the first session's first heartbeat carries a ping"
    client.send(PONG)
    service.clock.pump([5] * 4)
    assert pings(client) == 1
    service.clock.advance(5)
    assert pings(client) == 2


def test_an_unanswered_ping_drops_at_the_next_ping(make_service: Any) -> None:
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=3)
    client = Client(service)
    service.clock.advance(1)
    assert pings(client) == 1
    service.clock.pump([1, 1])
    assert not client.exchange.transport.disconnecting, "the pong is due at the next ping"
    service.clock.advance(1)
    assert client.exchange.transport.disconnecting, "vanished: dropped within two intervals"
    assert service.resource.service.stats["websocket"].liveness_timeouts == 1


def test_sessions_opened_together_ping_at_successive_heartbeats(make_service: Any) -> None:
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=3)
    clients = [Client(service, f"/s/0/{n}/websocket") for n in range(4)]
    first = []
    for _ in range(3):
        service.clock.advance(1)
        first.append([pings(c) for c in clients])
        for c in clients:
            c.send(PONG)
    assert first == [[1, 0, 0, 1], [1, 1, 0, 1], [1, 1, 1, 1]]


def test_raw_websockets_are_pinged_with_every_heartbeat(make_service: Any) -> None:
    # A raw websocket has no ``h`` frame: the ping is its heartbeat.
    service = make_service(heartbeat_delay=1, disconnect_delay=1)
    client = Client(service, "/s/websocket")
    for n in range(1, 4):
        service.clock.advance(1)
        assert pings(client) == n
        client.send(PONG)
    assert not client.exchange.transport.disconnecting


def test_pongs_and_messages_in_one_read(make_service: Any) -> None:
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=1)
    client = Client(service)
    service.clock.advance(1)
    client.send(PONG + PONG + frame(b'["after"]') + PONG)
    assert service.protocol.received == [b"after"]
    assert not client.protocol._pong_due
    service.clock.advance(1)
    assert not client.exchange.transport.disconnecting


def test_a_full_connection_is_slow_not_dead(make_service: Any) -> None:
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=1)
    client = Client(service)
    tcp = client.exchange.transport
    service.clock.advance(1)  # ping sent
    tcp.producer.pauseProducing()  # the ping waits behind data
    tcp.producer.resumeProducing()
    service.clock.advance(1)
    assert not tcp.disconnecting, "the connection was full: one more interval"
    service.clock.advance(1)
    assert tcp.disconnecting


def test_liveness_can_be_turned_off(make_service: Any) -> None:
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_liveness=False)
    client = Client(service)
    service.clock.pump([1, 1, 1])
    assert not client.exchange.transport.disconnecting
    assert (9, b"") not in client.frames()
    assert client.texts().count(b"h") == 3


def test_permessage_deflate_when_turned_on(make_service: Any) -> None:
    service = make_service(websocket_compression=True)
    headers = dict(HANDSHAKE_HEADERS)
    headers["Sec-WebSocket-Extensions"] = "permessage-deflate; client_max_window_bits"
    exchange = service.http.get("/s/0/0/websocket", headers=headers)
    head = exchange.transport.value().partition(b"\r\n\r\n")[0]
    assert b"permessage-deflate; client_max_window_bits=12" in head
    compressor = zlib.compressobj(wbits=-12)
    body = compressor.compress(b'["' + b"squeeze " * 200 + b'"]')
    body += compressor.flush(zlib.Z_SYNC_FLUSH)
    compressed = frame(body[:-4])
    exchange.transport.protocol.dataReceived(bytes([compressed[0] | 0x40]) + compressed[1:])
    assert service.protocol.received == [b"squeeze " * 200]
    frames = parse_frames(exchange.transport.value().partition(b"\r\n\r\n")[2])
    echo = [payload for opcode, payload in frames if opcode == 1][-1]
    decompressor = zlib.decompressobj(wbits=-12)
    assert (
        decompressor.decompress(echo + b"\x00\x00\xff\xff") == b'a["' + b"squeeze " * 200 + b'"]'
    )
    assert len(echo) < 100


def test_no_compression_by_default(service: Service) -> None:
    headers = dict(HANDSHAKE_HEADERS)
    headers["Sec-WebSocket-Extensions"] = "permessage-deflate"
    exchange = service.http.get("/s/0/0/websocket", headers=headers)
    head = exchange.transport.value().partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 101") and b"permessage-deflate" not in head


def test_head_on_websocket_opens_nothing(service: Service) -> None:
    exchange = service.http.request("HEAD", "/s/0/0/websocket", headers=HANDSHAKE_HEADERS)
    assert exchange.response.status == 400
    assert exchange.response.body == b""
    assert len(service.resource.service) == 0


def test_websocket_session_id_over_the_limit_is_404(make_service: Any) -> None:
    service = make_service(max_session_id_length=8)
    exchange = service.http.get("/s/0/" + "x" * 9 + "/websocket", headers=HANDSHAKE_HEADERS)
    assert exchange.response.status == 404
    assert len(service.resource.service) == 0


def test_a_stalled_reactor_sends_one_heartbeat_not_the_missed_ones(make_service: Any) -> None:
    """A tick three heartbeats late sends one heartbeat (and drops no websocket for it)."""
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=1)
    client = Client(service, "/s/websocket")
    service.clock.advance(1)
    client.send(PONG)
    service.clock.advance(3.5)  # one tick, due at 2: the beats of 2, 3 and 4 all missed
    assert pings(client) == 2
    assert not client.exchange.transport.disconnecting
    client.send(PONG)
    service.clock.advance(0.5)  # 5 s: the cadence kept its phase
    assert pings(client) == 3
    assert not client.exchange.transport.disconnecting


@pytest.mark.parametrize("path", ["/s/0/0/websocket", "/s/websocket"])
def test_a_pong_read_after_a_late_ping_check_keeps_the_websocket(
    make_service: Any, path: str
) -> None:
    """
    The reactor runs timers before reads: after a stall, the check of a ping comes before
    the pong that waits to be read. The verdict waits for the turn's reads.
    """
    service = make_service(heartbeat_delay=1, disconnect_delay=1, websocket_ping_interval=1)
    client = Client(service, path)
    service.clock.advance(1)
    assert pings(client) == 1
    client.protocol.heartbeat(None if path == "/s/websocket" else b"h")  # the late check
    assert not client.exchange.transport.disconnecting
    client.send(PONG)  # this turn's reads
    service.clock.advance(0)  # the next turn
    assert not client.exchange.transport.disconnecting
    assert pings(client) == 2, "the ping of the checked beat goes once the pong is in"
    client.protocol.heartbeat(None if path == "/s/websocket" else b"h")
    service.clock.advance(0)  # no pong this time
    assert client.exchange.transport.disconnecting
