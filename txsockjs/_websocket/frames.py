"""
The WebSocket frames a SockJS connection mostly carries, parsed and built without autobahn.

Pure functions on bytes. :func:`parse_text_frames` takes whole, unfragmented, masked text
frames off the front of a client's buffer and stops at the first frame it does not fully
understand (control frames, fragments, binary, partial or invalid frames), which the caller
then hands to autobahn. :func:`text_frame` frames one server text message.
"""

from __future__ import annotations

import struct
from typing import Any

from autobahn.websocket import xormasker as _xormasker

#: Above this many bytes autobahn's (C accelerated, where built) masker beats Python's
#: big-integer XOR, which wins for the small frames SockJS mostly carries.
LARGE_FRAME = 1536
_HEADER16 = struct.Struct("!BBH")
_HEADER64 = struct.Struct("!BBQ")
#: FIN + text opcode, no reserved bits: the only first byte the fast path takes.
_FINAL_TEXT = 0x81
#: Autobahn's masker (C accelerated where built); the module re-exports it untyped.
_create_masker: Any = getattr(_xormasker, "create_xor_masker")  # noqa: B009


def unmask(mask: bytes, payload: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` repeated (RFC 6455 5.3)."""
    length = len(payload)
    if length > LARGE_FRAME:
        unmasked: bytes = _create_masker(mask, length).process(payload)
        return unmasked
    if not length:
        return b""
    key = int.from_bytes((mask * ((length >> 2) + 1))[:length], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")


def parse_text_frames(data: bytes, limit: int) -> tuple[list[bytes], int]:
    """
    The text messages of the whole final masked text frames at the start of ``data``, as
    their UTF-8 payloads (checked, not decoded).

    :param limit: the largest payload taken; a larger frame is left to autobahn (which
        refuses it with 1009).
    :return: the payloads and how many bytes of ``data`` they used. Parsing stops
        before the first frame that is not such a frame, is incomplete, announces its
        length in more bytes than needed (autobahn fails it with 1002) or is not UTF-8
        (autobahn fails it with 1007).
    """
    end = len(data)
    position = 0
    messages: list[bytes] = []
    while position + 6 <= end:
        if data[position] != _FINAL_TEXT:
            break
        length = data[position + 1] ^ 0x80
        start = position + 6
        if length >= 126:
            if length != 126 or position + 8 > end:
                break
            length = (data[position + 2] << 8) | data[position + 3]
            if length < 126:
                break
            start = position + 8
        elif length < 0:
            break  # not masked
        if start + length > end or length > limit:
            break
        if length > LARGE_FRAME:
            payload = unmask(data[start - 4 : start], data[start : start + length])
        elif length:  # unmask(), inlined for the small frames SockJS mostly carries
            key = int.from_bytes((data[start - 4 : start] * ((length >> 2) + 1))[:length], "big")
            payload = (int.from_bytes(data[start : start + length], "big") ^ key).to_bytes(
                length, "big"
            )
        else:
            payload = b""
        if not payload.isascii():  # ASCII is UTF-8 as it is; anything else is checked
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                break
        messages.append(payload)
        position = start + length
    return messages, position


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame from the server."""
    length = len(payload)
    if length < 126:
        return bytes((_FINAL_TEXT, length)) + payload
    if length < 65536:
        return _HEADER16.pack(_FINAL_TEXT, 126, length) + payload
    return _HEADER64.pack(_FINAL_TEXT, 127, length) + payload


#: An empty ping frame from the server.
PING = b"\x89\x00"
#: The SockJS heartbeat frame ``h`` as a websocket text frame from the server.
HEARTBEAT_FRAME = text_frame(b"h")
