"""
Every message arrives as sent: a SockJS message is a JavaScript string (any UTF-16 code
units, the empty string included), on every transport, in both directions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from txsockjs import IBinaryMessageReceiver, MessageProtocol

from .conftest import Service
from .test_websocket import Client, frame

# -- JavaScript strings ------------------------------------------------------------------------


def js_string(units: list[int]) -> str:
    """The Python str a JSON parser makes of a JavaScript string's code units."""
    return b"".join(unit.to_bytes(2, "little") for unit in units).decode(
        "utf-16-le", "surrogatepass"
    )


def js_units(text: str) -> list[int]:
    wide = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(wide[i : i + 2], "little") for i in range(0, len(wide), 2)]


def js_json(messages: list[str]) -> bytes:
    """JSON of ``messages`` in ASCII: every other character as ``\\uXXXX`` escapes."""
    return json.dumps(messages).encode("ascii")


def browser_json(messages: list[str]) -> bytes:
    """
    What a browser's ``JSON.stringify`` sends: characters as UTF-8, lone surrogates (and
    controls, quotes, backslashes) as escapes.
    """
    return json.dumps(messages, ensure_ascii=False).encode("utf-8", "backslashreplace")


code_units = st.lists(st.integers(min_value=0, max_value=0xFFFF), max_size=40)
surrogate_heavy = st.lists(
    st.one_of(st.integers(0xD800, 0xDFFF), st.integers(0, 0x7F), st.integers(0, 0xFFFF)),
    max_size=20,
)
any_units = st.one_of(code_units, surrogate_heavy)

LONE_SURROGATES = ["\ud800", "\udfff", "a\ud800b", "x\udbff", "\udc00y", "\udc00\ud800"]


# -- what the client sees of each transport ---------------------------------------------------


def frames_of(transport: str, body: bytes) -> list[str]:
    """The SockJS frames in a response body, decoded as sockjs-client decodes them."""
    if transport in ("xhr", "xhr_streaming"):
        lines = body.split(b"\n")
        if transport == "xhr_streaming":
            lines = lines[1:]  # the 2 KiB prelude
        return [line.decode("ascii") for line in lines if line]
    if transport == "eventsource":
        events = re.findall(rb"data: ([^\r]*)\r\n\r\n", body)
        return [event.decode("ascii").replace("%25", "%") for event in events]
    if transport == "htmlfile":
        literals = re.findall(rb"<script>\np\((.*?)\);\n</script>", body)
        return [json.loads(literal) for literal in literals]
    if transport == "jsonp":
        literals = re.findall(rb"/\*\*/cb\((.*?)\);\r\n", body)
        return [json.loads(literal) for literal in literals]
    raise AssertionError(transport)


def messages_of(frames: list[str]) -> list[str]:
    messages: list[str] = []
    for sockjs_frame in frames:
        if sockjs_frame.startswith("a"):
            messages.extend(json.loads(sockjs_frame[1:]))
    return messages


HTTP_TRANSPORTS = {
    "xhr": ("POST", ""),
    "xhr_streaming": ("POST", ""),
    "eventsource": ("GET", ""),
    "htmlfile": ("GET", "?c=cb"),
    "jsonp": ("GET", "?c=cb"),
}


class Echo(MessageProtocol):
    """Decodes each message to ``str`` and sends it back: the text API's round trip."""

    def messageReceived(self, message: str) -> None:
        self.sendMessage(message)


def http_round_trip(
    transport: str,
    messages: list[str],
    send: str = "xhr_send",
    encode: Callable[[list[str]], bytes] = js_json,
) -> list[str]:
    """Send ``messages`` in one request and read their echoes from ``transport``."""
    service = echo_service()
    http = service.http
    method, query = HTTP_TRANSPORTS[transport]
    opener = http.request(method, f"/s/0/sid/{transport}{query}")
    if send == "xhr_send":
        answer = http.post("/s/0/sid/xhr_send", encode(messages))
        assert answer.response.status == 204
    else:
        body = b"d=" + quote(encode(messages)).encode("ascii")
        answer = http.post(
            "/s/0/sid/jsonp_send",
            body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.response.body == b"ok"
    if transport in ("xhr", "jsonp"):  # polling: the next poll gets the echoes
        opener = http.request(method, f"/s/0/sid/{transport}{query}")
    service.turn()
    body = opener.response.body
    service.resource.close()
    return messages_of(frames_of(transport, body))


def echo_service() -> Service:
    service = Service()
    service.resource.service.factory = Factory.forProtocol(Echo)
    return service


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", sorted(HTTP_TRANSPORTS))
def test_empty_and_lone_surrogates_round_trip_over_http(transport: str) -> None:
    sent = ["", "a", "", *LONE_SURROGATES, "\U0001f600", ""]
    assert http_round_trip(transport, sent) == sent


def test_jsonp_send_round_trip() -> None:
    sent = ["", "\ud800", "x&y=z%", ""]
    assert http_round_trip("xhr", sent, send="jsonp_send") == sent


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_units, min_size=1, max_size=4), st.sampled_from(sorted(HTTP_TRANSPORTS)))
def test_any_javascript_string_round_trips_over_http(
    units: list[list[int]], transport: str
) -> None:
    sent = [js_string(message) for message in units]
    echoed = http_round_trip(transport, sent)
    assert [js_units(message) for message in echoed] == units


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_units, st.sampled_from(sorted(HTTP_TRANSPORTS)))
def test_one_message_as_a_browser_sends_it_round_trips_over_http(
    units: list[int], transport: str
) -> None:
    """A send of one message, as browsers encode it (the plain-payload path when it can)."""
    sent = [js_string(units)]
    echoed = http_round_trip(transport, sent, encode=browser_json)
    assert [js_units(message) for message in echoed] == [units]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_units, min_size=1, max_size=4), st.sampled_from([js_json, browser_json]))
def test_any_javascript_string_round_trips_over_websocket(
    units: list[list[int]], encode: Callable[[list[str]], bytes]
) -> None:
    service = echo_service()
    client = Client(service)
    sent = [js_string(message) for message in units]
    for message in sent:  # one plain message a frame, as sockjs-client sends them
        client.send(frame(encode([message])))
    texts = [text.decode("ascii") for text in client.texts()]
    echoed = messages_of(texts)
    assert [js_units(message) for message in echoed] == units
    service.resource.close()


def test_the_protocol_sees_wtf8_bytes_and_may_write_them_back(service: Service) -> None:
    service.http.post("/s/0/a/xhr")
    service.http.post("/s/0/a/xhr_send", b'["\\ud800", "", "\\ud83d\\ude00"]')
    assert service.protocol.received == [b"\xed\xa0\x80", b"", "\U0001f600".encode()]
    poll = service.http.post("/s/0/a/xhr")
    assert poll.response.body == b'a["\\ud800","","\\ud83d\\ude00"]\n'


def test_write_of_nothing_is_one_empty_message(service: Service) -> None:
    service.http.post("/s/0/a/xhr")
    transport: Any = service.protocol.transport
    transport.write(b"")
    transport.writeSequence([])
    transport.write(b"x")
    service.turn()
    assert service.http.post("/s/0/a/xhr").response.body == b'a["","","x"]\n'


def test_split_characters_wait_for_their_end(service: Service) -> None:
    service.http.post("/s/0/a/xhr")
    transport: Any = service.protocol.transport
    euro = "€".encode()
    surrogate = b"\xed\xb0\x80"  # U+DC00 as the protocol sees it
    transport.write(euro[:1])
    transport.write(euro[1:2])
    transport.write(b"")  # a character is pending: this is not an empty message
    transport.write(euro[2:])
    transport.write(surrogate[:2])
    transport.write(surrogate[2:])
    service.turn()
    assert service.http.post("/s/0/a/xhr").response.body == b'a["\\u20ac","\\udc00"]\n'


def test_invalid_utf8_is_still_refused(service: Service) -> None:
    service.http.post("/s/0/a/xhr")
    transport: Any = service.protocol.transport
    transport.write(b"\xff")
    assert service.http.post("/s/0/a/xhr").response.body == (
        b'c[1007,"Invalid UTF-8 written by the application"]\n'
    )


def test_empty_message_over_sockjs_websocket(service: Service) -> None:
    client = Client(service)
    client.send(frame(b'[""]') + frame(b'""'))
    assert service.protocol.received == [b"", b""]
    assert client.texts()[1:] == [b'a["",""]']


def test_empty_message_over_raw_websocket(service: Service) -> None:
    client = Client(service, "/s/websocket")
    client.send(frame(b""), frame(b"x"), frame(b""))
    assert service.protocol.received == [b"", b"x", b""]
    assert client.texts() == [b"", b"x", b""]


def test_raw_websocket_sends_lone_surrogates_as_replacement_characters(service: Service) -> None:
    client = Client(service, "/s/websocket")
    transport: Any = service.protocol.transport
    transport.write("a\ud800b".encode("utf-8", "surrogatepass"))
    transport.write("\ud83d\ude00".encode("utf-8", "surrogatepass"))  # a pair, written apart
    service.turn()
    assert client.texts() == ["a\ufffdb".encode(), "\U0001f600".encode()]


@implementer(IBinaryMessageReceiver)
class BinaryEcho(Protocol):
    def binaryMessageReceived(self, data: bytes) -> None:
        self.transport.writeBinary(data)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


def binary_service(make_service: Callable[..., Service]) -> Service:
    service = make_service()
    service.resource.service.factory = Factory.forProtocol(BinaryEcho)
    return service


def test_raw_websocket_binary_messages_round_trip(make_service: Callable[..., Service]) -> None:
    service = binary_service(make_service)
    client = Client(service, "/s/websocket")
    client.send(frame(b"\x00\xff\x80", opcode=2), frame(b"text"), frame(b"", opcode=2))
    assert client.frames() == [(2, b"\x00\xff\x80"), (1, b"text"), (2, b"")]


def test_binary_needs_the_raw_websocket(service: Service) -> None:
    service.http.post("/s/0/a/xhr")
    with pytest.raises(ValueError, match="raw websocket"):
        service.protocol.transport.writeBinary(b"x")  # type: ignore[union-attr]
    service.protocol.transport.abortConnection()  # type: ignore[union-attr]


def test_send_message_takes_str_only() -> None:
    protocol = Echo()
    with pytest.raises(TypeError, match="takes str, not bytes"):
        protocol.sendMessage(b"x")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="before connectionMade"):
        protocol.sendMessage("x")
