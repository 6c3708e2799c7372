"""
Every SockJS transport end to end (issue 3): a real server on 127.0.0.1, real clients (treq
for the HTTP transports, autobahn for the websockets).
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet.defer import DeferredList
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol

from .clients import (
    ALL_TRANSPORTS,
    HTTP_POLLING,
    HTTP_STREAMING,
    HTTP_TRANSPORTS,
    SOCKJS_TRANSPORTS,
    TIMEOUT,
    gather,
    with_timeout,
)
from .servers import Harness

#: Text that tests every escaping rule on the way: non-ASCII, astral, script-breaking
#: sequences, eventsource's ``%``, JavaScript line separators, controls, quotes.
AWKWARD = [
    "hello",
    "ünïcödé ☃ 𝄞 🐍",
    "</script><script>alert(1)</script>",
    "%41 %25 %",
    "line\u2028separator\u2029",
    '\x00\x01\n\r\t "quoted" \\ backslash',
    "\ufff0\uffff\u200c\u2060",
]


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_open_echo_close(harness: Harness, transport: str) -> None:
    """Open, echo awkward text both ways, and a close from the server ends the session."""
    client = await harness.open(transport, "control")
    await client.send(*AWKWARD)
    assert await client.recv_many(len(AWKWARD)) == AWKWARD
    control = harness.controls[0]
    # Each message arrived as exactly one dataReceived call, in UTF-8.
    assert control.received == [m.encode("utf-8") for m in AWKWARD]
    await client.send("close 4001 bye now")
    close = await client.wait_closed()
    assert (close.code, close.reason) == (4001, "bye now")
    [reason] = await with_timeout(harness.reactor, control.lost)
    assert reason.check(ConnectionDone)
    if transport == "raw-websocket":
        assert (client.ws_close.code, client.ws_close.reason) == (4001, "bye now")
    elif transport == "websocket":
        ws_close = await client.wait_ws_closed()
        assert ws_close.clean


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_nested_mount(harness: Harness, transport: str) -> None:
    """A service three levels deep in the resource tree serves every transport."""
    client = await harness.open(transport, "deep/er/echo")
    await client.send("deep")
    assert await client.recv() == "deep"


@pytest.mark.parametrize("transport", SOCKJS_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_batching(harness: Harness, transport: str) -> None:
    """
    What the protocol writes in one reactor turn leaves as one ``a[...]`` frame; messages
    sent in one request arrive as separate ``dataReceived`` calls.
    """
    client = await harness.open(transport, "control")
    await client.send("burst 6")
    assert await client.recv_many(6) == ["0", "1", "2", "3", "4", "5"]
    assert 'a["0","1","2","3","4","5"]' in client.frames
    await client.send("x", "y", "z")
    assert await client.recv_many(3) == ["x", "y", "z"]
    assert 'a["x","y","z"]' in client.frames
    assert harness.controls[0].received[-3:] == [b"x", b"y", b"z"]


@pytest.mark.parametrize("transport", HTTP_POLLING)
@pytest_twisted.ensureDeferred
async def test_queued_while_no_receiver(harness: Harness, transport: str) -> None:
    """Messages written while no receiver is attached are flushed to the next as one frame."""
    client = harness.client(transport, "control")
    assert await client.receive_once() == ["o"]
    await client.send("burst 3")
    await client.send("later")
    assert harness.controls[0].received == [b"burst 3", b"later"]
    assert await client.receive_once() == ['a["0","1","2","later"]']


@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_close_frame_replayed(harness: Harness, transport: str) -> None:
    """After a close, every later receive request gets the same close frame."""
    client = await harness.open(transport, "control")
    await client.send("close 4002 replayed")
    close = await client.wait_closed()
    assert (close.code, close.reason) == (4002, "replayed")
    await client.stop()
    for _ in range(2):
        assert await client.receive_once() == ['c[4002,"replayed"]']
    # A send to a closed session is not delivered.
    control = harness.controls[0]
    received = list(control.received)
    response = await client.post_send(json.dumps(["late"]))
    await treq.content(response)
    assert control.received == received


@pytest.mark.parametrize("transport", HTTP_STREAMING)
@pytest_twisted.ensureDeferred
async def test_second_receiver_streaming(harness: Harness, transport: str) -> None:
    """A second receiver of a streaming session gets 2010; the first one is unaffected."""
    client = await harness.open(transport)
    # The first stream got 'o', so it is attached.
    assert await client.receive_once() == ['c[2010,"Another connection still open"]']
    await client.send("still there")
    assert await client.recv() == "still there"


@pytest.mark.parametrize("transport", HTTP_POLLING)
@pytest_twisted.ensureDeferred
async def test_second_receiver_polling(harness: Harness, transport: str) -> None:
    """
    Two polls at once: whichever arrives second gets 2010 at once, the other one stays
    attached and gets the next message.
    """
    client = harness.client(transport)
    assert await client.receive_once() == ["o"]
    first = client.receive_once_deferred()
    second = client.receive_once_deferred()
    early = await with_timeout(
        harness.reactor, DeferredList([first, second], fireOnOneCallback=True)
    )
    frames, index = early
    assert frames == ['c[2010,"Another connection still open"]']
    waiting = second if index == 0 else first
    assert not waiting.called
    await client.send("to the attached poll")
    assert await with_timeout(harness.reactor, waiting) == ['a["to the attached poll"]']


@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_send_to_unknown_session(harness: Harness, transport: str) -> None:
    """xhr_send and jsonp_send to a session that does not exist: 404."""
    client = harness.client(transport)
    response = await client.post_send(json.dumps(["nobody"]))
    assert response.code == 404
    await treq.content(response)


@pytest.mark.parametrize("form", [True, False], ids=["form", "text-plain"])
@pytest_twisted.ensureDeferred
async def test_jsonp_send_bodies(harness: Harness, form: bool) -> None:
    """jsonp_send takes a form (field ``d``) or a raw text/plain body, not URL-decoded."""
    client = await harness.open("jsonp-polling", "control", jsonp_form=form)
    await client.send("%61bc", "ünï", "a+b c")
    assert await client.recv_many(3) == ["%61bc", "ünï", "a+b c"]
    # Errors: broken JSON and no payload answer 500; the session goes on.
    for payload, error in (('["x', b"Broken JSON encoding."), ("", b"Payload expected.")):
        response = await client.post_send(payload)
        assert response.code == 500
        assert error in await treq.content(response)
    await client.send("fine")
    assert await client.recv() == "fine"


@pytest.mark.parametrize(
    "transport, form",
    [(t, False) for t in HTTP_TRANSPORTS] + [("jsonp-polling", True)],
    ids=[*HTTP_TRANSPORTS, "jsonp-polling-form"],
)
@pytest_twisted.ensureDeferred
async def test_unescaped_utf8_payload(harness: Harness, transport: str, form: bool) -> None:
    """
    A payload whose JSON holds raw UTF-8 (not ``\\u`` escapes), as sockjs-client sends it:
    jsonp_send's form body percent-encodes those bytes.
    """
    client = await harness.open(transport, "control", jsonp_form=form)
    payload = json.dumps(["ü ☃ 𝄞", "plain"], ensure_ascii=False)
    response = await client.post_send(payload)
    body = await treq.content(response)
    assert response.code in (200, 204), (response.code, body)
    assert await client.recv_many(2) == ["ü ☃ 𝄞", "plain"]


@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_send_errors(harness: Harness, transport: str) -> None:
    """Broken JSON and empty payloads get 500 and never disturb the session."""
    client = await harness.open(transport, "control")
    for payload, error in (
        ('["x', b"Broken JSON encoding."),
        ("", b"Payload expected."),
        ('{"not": "an array"}', b"Broken JSON encoding."),
        (b'["\xff\xfe"]', b"Broken JSON encoding."),
    ):
        response = await client.post_send(payload)
        assert response.code == 500, payload
        assert error in await treq.content(response)
    assert harness.controls[0].received == []
    await client.send("fine")
    assert await client.recv() == "fine"


@pytest.mark.parametrize("transport", SOCKJS_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_heartbeats(harness: Harness, transport: str) -> None:
    """A service with heartbeat_delay=0.1 sends ``h`` frames while a receiver is attached."""
    client = await harness.open(transport, "heartbeat")
    beats = 0
    while beats < 3:
        event = await client.next_event()
        assert event.kind == "heartbeat", event
        beats += 1
    await client.send("between beats")
    assert await client.recv() == "between beats"


@pytest.mark.parametrize("transport", HTTP_STREAMING)
@pytest_twisted.ensureDeferred
async def test_response_limit(harness: Harness, transport: str) -> None:
    """A stream ends after response_limit bytes of frames; the client reconnects, no loss."""
    client = await harness.open(transport, "limited")
    messages = [f"{n:03d}" + "m" * 400 for n in range(40)]
    for message in messages:
        await client.send(message)
    assert await client.recv_many(len(messages)) == messages
    assert client.reconnects >= 2


@pytest.mark.parametrize("transport", HTTP_POLLING)
@pytest_twisted.ensureDeferred
async def test_session_expires(harness: Harness, transport: str) -> None:
    """
    A session nobody polls for disconnect_delay is closed (ConnectionLost) and forgotten;
    its id then starts a new session.
    """
    client = harness.client(transport, "control")
    assert await client.receive_once() == ["o"]
    control = harness.controls[0]
    [reason] = await with_timeout(harness.reactor, control.lost)
    assert reason.check(ConnectionLost)
    await harness.until(lambda: len(harness.services["control"].service) == 0, "forgotten")
    assert await client.receive_once() == ["o"]
    assert len(harness.controls) == 2


@pytest.mark.parametrize("transport", ["xhr-streaming", "eventsource", "htmlfile", "xhr-polling"])
@pytest_twisted.ensureDeferred
async def test_client_abort(harness: Harness, transport: str) -> None:
    """
    A client dropping its receiving connection closes the session (ConnectionLost); the
    next request sees 1002 or a new session.
    """
    client = await harness.open(transport, "control")
    await client.abort()
    [reason] = await with_timeout(harness.reactor, harness.controls[0].lost)
    assert reason.check(ConnectionLost)
    frames = await client.receive_once(stop_after=1)
    assert frames[0] in ('c[1002,"Connection interrupted"]', "o"), frames


@pytest_twisted.ensureDeferred
async def test_websocket_sessions_are_not_shared(harness: Harness) -> None:
    """Two websockets with the same session id are independent sessions."""
    first = harness.client("websocket", "control", session_id="same")
    second = harness.client("websocket", "control", session_id="same")
    await gather(harness.reactor, [first.open(), second.open()])
    await first.send("one")
    await second.send("two")
    assert await first.recv() == "one"
    assert await second.recv() == "two"
    assert len(harness.controls) == 2
    await first.close_websocket()
    await second.send("still")
    assert await second.recv() == "still"


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_connection_facts(harness: Harness, transport: str) -> None:
    """What the protocol learns about its connection, over a real socket."""
    client = await harness.open(transport, "control")
    await client.send("facts")
    facts = json.loads(await client.recv())
    port = harness.port.getHost().port
    assert facts["transport"] == transport
    assert facts["peer"][:2] == ["IPv4Address", "127.0.0.1"]
    assert facts["peer"][2] > 0
    assert facts["host"] == ["127.0.0.1", port]
    assert facts["prefix"] == "/control"
    assert facts["headers"]["host"] == f"127.0.0.1:{port}"
    assert "cookie" not in facts["headers"]
    assert facts["state"] == "open"
    assert facts["path"].startswith("/control/")
    assert facts["url"].startswith(facts["path"])


class Explodes(Protocol):
    """Raises in ``connectionMade`` or in ``dataReceived``, as buggy applications do."""

    where = ""

    def connectionMade(self) -> None:
        if self.where == "connectionMade":
            raise RuntimeError("application bug in connectionMade")

    def dataReceived(self, data: bytes) -> None:
        if self.where == "dataReceived":
            raise RuntimeError("application bug in dataReceived")


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest.mark.parametrize("where", ["connectionMade", "dataReceived"])
@pytest_twisted.ensureDeferred
async def test_protocol_raises(harness: Harness, transport: str, where: str) -> None:
    """
    An application that raises closes its session with 1011 "Server error" (the exception
    is logged); the server keeps serving and no timer of that session keeps running.
    """
    harness.mount("explodes", Factory.forProtocol(type("E", (Explodes,), {"where": where})))
    client = harness.client(transport, "explodes")
    await client.start()
    if transport != "raw-websocket":
        await client.expect_open(TIMEOUT)
    if where == "dataReceived":
        await client.send("boom")
    close = await client.wait_closed()
    # Autobahn lets a server send only 1000 and 3000-4999 as a close code: the raw
    # websocket (which has no SockJS close frame) says 1000 with the reason.
    codes = (1011, 1000) if transport == "raw-websocket" else (1011,)
    assert close.code in codes and close.reason == "Server error", close
    other = await harness.open(transport)
    await other.send("fine")
    assert await other.recv() == "fine"
