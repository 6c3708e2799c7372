"""
SockJS frames and payloads: pure functions, no Twisted.

Outgoing messages are kept as JSON string literals (``b'"text"'``), encoded once when they are
written; a frame joins them. JSON is compact and ASCII-only, which escapes every character
the protocol requires to be escaped (and lone surrogates) as lowercase ``\\uXXXX``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

OPEN = b"o"
HEARTBEAT = b"h"


class BinaryMessage(bytes):
    """A binary message: the raw websocket carries them besides text messages."""

    __slots__ = ()


_encode_string = json.encoder.encode_basestring_ascii


#: Every byte but those a JSON string cannot hold as they are (``"``, ``\``, controls).
#: Deleting them from a payload with ``bytes.translate`` leaves its quotes and whatever
#: needs JSON: a C loop over a table, several times faster than a regular expression.
PLAIN_BYTES = bytes(byte for byte in range(0x20, 0x100) if byte not in b'"\\')
#: Printable ASCII but ``"`` and ``\``: what :func:`encode_message` copies as it is. Text
#: written with these bytes only (most of it) is sent as ``b'"' + text + b'"'``, with
#: neither a UTF-8 decode nor the JSON encoder.
VERBATIM_BYTES = bytes(range(0x20, 0x7F)).translate(None, b'"\\')


def plain_payload(payload: bytes) -> bytes | None:
    """
    The message of a payload of one message of plain text, ``["..."]`` with no escape and
    no control character, as the UTF-8 it already is; ``None`` for any other payload.

    Clients send such payloads almost always; their message is taken without decoding
    anything and without the json module (a third of the calls per message). Anything
    else is JSON's.

    ``payload`` must be valid UTF-8 (a websocket frame's is checked when it is parsed).
    """
    if (
        payload.translate(None, PLAIN_BYTES) == b'""'
        and payload[:2] == b'["'
        and payload[-2:] == b'"]'
    ):
        return payload[2:-2]
    return None


class PayloadError(ValueError):
    """
    A client sent a payload that is not a JSON array of strings.

    ``str(error)`` is the answer the protocol prescribes (``Payload expected.`` or
    ``Broken JSON encoding.``).
    """


def encode_message(text: str) -> bytes:
    """One message as a JSON string literal, ASCII only: the unit queues hold."""
    encoded: str = _encode_string(text)
    return encoded.encode("ascii")


def encode_raw_text(text: str) -> bytes:
    """
    One message as a raw websocket's UTF-8 text payload.

    A websocket text message must be valid UTF-8, so a lone surrogate becomes U+FFFD, as a
    browser's ``WebSocket.send`` does with one; a surrogate pair becomes its character.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        wide = text.encode("utf-16-le", "surrogatepass")
        return wide.decode("utf-16-le", "replace").encode("utf-8")


def message_frame(encoded: Sequence[bytes]) -> bytes:
    """An ``a[...]`` frame of messages already passed through :func:`encode_message`."""
    return b"a[" + b",".join(encoded) + b"]"


def close_frame(code: int, reason: str) -> bytes:
    """A ``c[code,"reason"]`` frame."""
    return b"c[%d,%s]" % (code, encode_message(reason))


def decode_payload(body: bytes) -> Sequence[str | bytes]:
    """
    Decode a client payload: a JSON array of strings, UTF-8 encoded.

    :return: the messages, as text, or as their UTF-8 (``bytes``) for one plain message.
    :raises PayloadError: ``Payload expected.`` for an empty body, ``Broken JSON encoding.``
        for anything that is not a JSON array of strings.
    """
    if not body:
        raise PayloadError("Payload expected.")
    if body.isascii():  # valid UTF-8 as it is
        plain = plain_payload(body)
        if plain is not None:
            return [plain]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("Broken JSON encoding.") from None
    return decode_text_payload(text)


def decode_text_payload(text: str) -> list[str]:
    """
    Decode a client payload already decoded from UTF-8 (the body of a send).

    :raises PayloadError: ``Broken JSON encoding.`` unless it is a JSON array of strings.
    """
    return decode_websocket_message(text, one_string=False)


def decode_websocket_message(text: str, one_string: bool = True) -> list[str]:
    """
    Decode a SockJS websocket text message: a JSON array of strings, or (``one_string``)
    one JSON string.

    :raises PayloadError: ``Broken JSON encoding.`` for anything else.
    """
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
        raise PayloadError("Broken JSON encoding.") from None
    if one_string and type(decoded) is str:
        return [decoded]
    if type(decoded) is not list:
        raise PayloadError("Broken JSON encoding.")
    for message in decoded:
        if type(message) is not str:
            raise PayloadError("Broken JSON encoding.")
    return decoded


# Characters that could end or confuse a script element or a JavaScript string, escaped in
# every frame that lands in a script context (htmlfile, jsonp). The frame itself is ASCII.
_SCRIPT_UNSAFE = re.compile(rb"[<>&]")
_SCRIPT_ESCAPES = {b"<": b"\\u003c", b">": b"\\u003e", b"&": b"\\u0026"}


def script_string(frame: bytes) -> bytes:
    """
    A frame as a JavaScript string literal that is safe inside ``<script>``.

    ``<``, ``>`` and ``&`` become ``\\uXXXX``; U+2028 and U+2029 never appear because the
    result is ASCII. So no message can end the script element.
    """
    literal = encode_message(frame.decode("ascii"))
    return _SCRIPT_UNSAFE.sub(lambda match: _SCRIPT_ESCAPES[match.group()], literal)


def eventsource_data(frame: bytes) -> bytes:
    """
    A frame as an EventSource event.

    sockjs-client URI-decodes every event, so ``%`` is escaped; the ASCII JSON of a frame
    holds no CR, LF or NUL to escape.
    """
    return b"data: " + frame.replace(b"%", b"%25") + b"\r\n\r\n"


_CALLBACK = re.compile(r"[A-Za-z0-9_.]{1,32}\Z")


def valid_callback(name: str) -> bool:
    """Whether a jsonp/htmlfile callback name is safe: ``[A-Za-z0-9_.]``, 32 at most."""
    return _CALLBACK.match(name) is not None
