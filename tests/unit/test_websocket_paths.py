"""
The websocket fast path (txsockjs._websocket.frames) and autobahn's own frame machinery
agree: the same random frame sequences, split at random points, give the same messages to
the protocol, the same frames back (echoes, pongs, close frames) and the same end.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Service
from .test_websocket import Client, parse_frames

LIMIT = 300


def encode(
    payload: bytes,
    opcode: int,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    wide_length: bool = False,
) -> bytes:
    """A client frame, well formed or not, as the parameters say."""
    length = len(payload)
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if masked else 0
    if length < 126 and not wide_length:
        head = bytes([first, mask_bit | length])
    elif length < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


texts = st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass"))
sockjs_texts = st.lists(st.text(max_size=20), max_size=3).map(
    lambda messages: (
        '["' + '","'.join(m.replace("\\", "").replace('"', "") for m in messages) + '"]'
    ).encode("utf-8", "surrogatepass")
)
any_bytes = st.binary(max_size=40)

frame_kinds = st.one_of(
    texts.map(lambda p: encode(p, 1)),
    sockjs_texts.map(lambda p: encode(p, 1)),
    sockjs_texts.map(lambda p: encode(p, 1, wide_length=True)),
    any_bytes.map(lambda p: encode(p, 1)),
    any_bytes.map(lambda p: encode(p, 2)),
    any_bytes.map(lambda p: encode(p, 9)),
    any_bytes.map(lambda p: encode(p, 10)),
    st.just(encode(b"", 10)),
    st.integers(min_value=1, max_value=3).map(lambda n: encode(b"", 10) * n),
    texts.map(lambda p: encode(p, 1, masked=False)),
    texts.map(lambda p: encode(p, 1, rsv=1)),
    st.binary(min_size=LIMIT + 1, max_size=LIMIT + 50).map(lambda p: encode(p, 1)),
    st.tuples(texts, texts).map(lambda pair: encode(pair[0], 1, fin=False) + encode(pair[1], 0)),
    st.sampled_from([1000, 1001, 1002, 3000, 4999, 999, 1005, 5000]).map(
        lambda code: encode(struct.pack("!H", code) + b"bye", 8)
    ),
)


def run(path: str, frames: list[bytes], cuts: list[int], fast: bool) -> tuple[Any, ...]:
    service = Service(max_message_bytes=LIMIT)
    client = Client(service, path)
    client.protocol.fastFrames = fast
    client.protocol._pong_due = True  # as after a liveness ping: a pong clears it
    data = b"".join(frames)
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:], strict=False):
        if client.protocol.state == client.protocol.STATE_CLOSED:
            break
        client.send(data[start:end])
        service.turn()
    protocol = service.protocol
    sent = parse_frames(client._rest + client.exchange.transport.value())
    lost = [reason.type.__name__ for reason in protocol.lost]
    result = (protocol.received, sent, lost, client.protocol._pong_due)
    service.resource.close()
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["/s/websocket", "/s/0/0/websocket"]),
    st.lists(frame_kinds, min_size=1, max_size=8),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=6),
)
def test_fast_path_and_autobahn_agree(path: str, frames: list[bytes], cuts: list[int]) -> None:
    assert run(path, frames, cuts, fast=True) == run(path, frames, cuts, fast=False)
