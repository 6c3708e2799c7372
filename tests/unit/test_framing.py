"""Frames, payloads and escaping: pure functions, checked by example and by property."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txsockjs._core.framing import (
    VERBATIM_BYTES,
    PayloadError,
    close_frame,
    decode_payload,
    decode_text_payload,
    decode_websocket_message,
    encode_message,
    eventsource_data,
    message_frame,
    plain_payload,
    script_string,
    valid_callback,
)
from txsockjs.transports.http import (
    EVENTSOURCE,
    HTMLFILE,
    JSONP_POLLING,
    XHR_POLLING,
    XHR_STREAMING,
)

texts = st.text(alphabet=st.characters(codec="utf-8"))


def test_message_frame_is_compact_json() -> None:
    frame = message_frame([encode_message("a"), encode_message('b"c')])
    assert frame == b'a["a","b\\"c"]'


def test_close_frame() -> None:
    assert close_frame(3000, "Go away!") == b'c[3000,"Go away!"]'


@pytest.mark.parametrize(
    "char", ["\u0000", "\u001f", "\u200c", "\u2028", "\u2029", "\u2060", "\ufff0", "\uffff"]
)
def test_protocol_escaping_set_is_lowercase_u_escaped(char: str) -> None:
    assert encode_message(char) == f'"\\u{ord(char):04x}"'.encode()


def test_lone_surrogate_is_escaped_not_an_encoding_error() -> None:
    assert encode_message("\ud800") == b'"\\ud800"'


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "Payload expected."),
        (b'["x', "Broken JSON encoding."),
        (b'{"a": 1}', "Broken JSON encoding."),
        (b'["a", 1]', "Broken JSON encoding."),
        (b'["\xff"]', "Broken JSON encoding."),
    ],
)
def test_bad_payloads(body: bytes, error: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(error)):
        decode_payload(body)


def test_empty_array_delivers_nothing() -> None:
    assert decode_payload(b"[]") == []


def test_payload_decodes_client_escapes() -> None:
    assert decode_payload(b'["\\u2028\\ud83d\\ude00x"]') == ["\u2028\U0001f600x"]
    assert decode_payload(b'["plain text"]') == [b"plain text"]  # its UTF-8, as it came


def test_script_string_escapes_html_specials() -> None:
    frame = message_frame([encode_message("</script><script>alert(1)&")])
    literal = script_string(frame)
    assert b"<" not in literal and b">" not in literal and b"&" not in literal
    assert json.loads(literal) == frame.decode()


def test_eventsource_escapes_percent() -> None:
    assert eventsource_data(b'a["%41"]') == b'data: a["%2541"]\r\n\r\n'


@pytest.mark.parametrize("name", ["callback", "_jp.a1b2c3", "x", "a" * 32])
def test_valid_callbacks(name: str) -> None:
    assert valid_callback(name)


@pytest.mark.parametrize("name", ["", " ", "*", "abc(", "abc%28", "a-b", "a" * 33, "a\n"])
def test_invalid_callbacks(name: str) -> None:
    assert not valid_callback(name)


def _unwrap(transport: str, data: bytes) -> bytes:
    """What sockjs-client recovers from one wrapped frame."""
    if transport in ("xhr", "xhr_streaming"):
        assert data.endswith(b"\n")
        return data[:-1]
    if transport == "eventsource":
        assert data.startswith(b"data: ") and data.endswith(b"\r\n\r\n")
        from urllib.parse import unquote

        return unquote(data[6:-4].decode()).encode()
    if transport == "htmlfile":
        match = re.fullmatch(rb"<script>\np\((.*)\);\n</script>\r\n", data, re.S)
        assert match
        return json.loads(match.group(1)).encode()
    match = re.fullmatch(rb"/\*\*/cb\((.*)\);\r\n", data, re.S)
    assert match
    return json.loads(match.group(1)).encode()


WRAPS = {
    "xhr": XHR_POLLING,
    "xhr_streaming": XHR_STREAMING,
    "eventsource": EVENTSOURCE,
    "htmlfile": HTMLFILE,
    "jsonp": JSONP_POLLING,
}


@given(messages=st.lists(texts, min_size=1, max_size=5))
def test_any_text_round_trips_through_every_transport(messages: list[str]) -> None:
    frame = message_frame([encode_message(m) for m in messages])
    for transport, framing in WRAPS.items():
        wrapped = framing.wrap(frame, b"cb")
        recovered = _unwrap(transport, wrapped)
        assert recovered[:1] == b"a"
        assert json.loads(recovered[1:]) == messages


@given(message=texts)
def test_no_script_context_frame_contains_a_closing_tag(message: str) -> None:
    frame = message_frame([encode_message(message)])
    for framing in (HTMLFILE, JSONP_POLLING):
        wrapped = framing.wrap(frame, b"cb")
        body = wrapped.replace(b"</script>\r\n", b"") if framing is HTMLFILE else wrapped
        assert b"</" not in body
        assert "\u2028".encode() not in wrapped and "\u2029".encode() not in wrapped


def _by_json(text: str, websocket: bool) -> list[str] | str:
    """What the json module alone makes of a payload: the reference for the plain path."""
    try:
        decoded = json.loads(text)
    except ValueError:
        return "Broken JSON encoding."
    if websocket and type(decoded) is str:
        return [decoded]
    if type(decoded) is not list or any(type(m) is not str for m in decoded):
        return "Broken JSON encoding."
    return decoded


def _text(messages: Sequence[str | bytes]) -> list[str]:
    """Messages as text (a plain one comes as its UTF-8)."""
    return [m.decode("utf-8") if isinstance(m, bytes) else m for m in messages]


@given(
    st.one_of(
        texts.map(lambda t: '["' + t + '"]'),
        texts.map(lambda t: json.dumps([t])),
        texts.map(lambda t: json.dumps([t], ensure_ascii=False)),
        st.lists(texts).map(json.dumps),
        texts,
    )
)
def test_plain_message_path_agrees_with_json(payload: str) -> None:
    """
    One plain ``["..."]`` message skips decoding and the json module (over HTTP and on a
    websocket); the messages must be the same.
    """
    utf8 = payload.encode("utf-8")
    plain = plain_payload(utf8)
    if plain is not None:
        assert [plain.decode("utf-8")] == _by_json(payload, True) == _by_json(payload, False)
    try:
        got: list[str] | str = _text(decode_payload(utf8))
    except PayloadError as error:
        got = str(error)
    assert got == (_by_json(payload, False) if payload else "Payload expected.")
    for decode, websocket in ((decode_text_payload, False), (decode_websocket_message, True)):
        try:
            got = decode(payload)
        except PayloadError as error:
            got = str(error)
        assert got == _by_json(payload, websocket)


@given(st.binary(max_size=40) | texts.map(lambda t: t.encode("utf-8")))
def test_verbatim_bytes_are_what_json_copies(data: bytes) -> None:
    """A message written with VERBATIM_BYTES only is sent as JSON would encode it."""
    if not data.translate(None, VERBATIM_BYTES):
        assert b'"' + data + b'"' == encode_message(data.decode("ascii"))
    else:
        text = data.decode("utf-8", "surrogateescape")
        assert encode_message(text) != b'"' + data + b'"'
