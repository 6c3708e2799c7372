"""
Stock Twisted protocols, unmodified, over every transport (issue 4): ``wire.Echo``, a chat on
``LineReceiver``, ``NetstringReceiver``, ``TimeoutMixin`` (through ``policies.TimeoutFactory``
and mixed into a LineReceiver), ``FileSender``, and a protocol written with coroutines.

A SockJS session is a byte stream to these protocols, as TCP is: the client side concatenates
the messages it receives and splits what it sends anywhere (at character boundaries).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.protocols import policies, wire
from twisted.protocols.basic import LineReceiver, NetstringReceiver
from twisted.python.failure import Failure

from .clients import ALL_TRANSPORTS, gather, with_timeout
from .servers import Harness, SendFileFactory

# -- wire.Echo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_wire_echo(harness: Harness, transport: str) -> None:
    """``twisted.protocols.wire.Echo``, as Twisted ships it."""
    harness.mount("wire-echo", Factory.forProtocol(wire.Echo))
    client = await harness.open(transport, "wire-echo")
    messages = ["one", "twö", "thrее ☃", "𝄞" * 1000, "x" * 100_000]
    await client.send(*messages)
    assert await client.recv_many(len(messages)) == messages


# -- a LineReceiver chat ----------------------------------------------------------------------


class Chat(LineReceiver):
    """A chat member: every line goes to every other member. LineReceiver as shipped."""

    factory: ChatFactory

    def connectionMade(self) -> None:
        self.factory.members.append(self)
        self.factory.joined.callback(None) if not self.factory.joined.called else None

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.members.remove(self)

    def lineReceived(self, line: bytes) -> None:
        for member in self.factory.members:
            if member is not self:
                member.sendLine(line)


class ChatFactory(Factory):
    protocol = Chat

    def __init__(self) -> None:
        self.members: list[Chat] = []
        self.joined: Deferred[None] = Deferred()


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_line_receiver_chat(harness: Harness, transport: str) -> None:
    """Lines split across messages, several lines in one message, UTF-8 lines."""
    chat = ChatFactory()
    harness.mount("chat", chat)
    alice = await harness.open(transport, "chat")
    bob = await harness.open(transport, "chat")
    assert len(chat.members) == 2
    await alice.send("hello bob\r\n")
    assert await bob.recv_text(11) == "hello bob\r\n"
    await alice.send("a line in ")
    await alice.send("two messages\r\nand a sec")
    await alice.send("ond line, ünïcödé ☃\r\n")
    expected = "a line in two messages\r\nand a second line, ünïcödé ☃\r\n"
    assert await bob.recv_text(len(expected)) == expected
    await bob.send("hi alice\r\n")
    assert await alice.recv_text(10) == "hi alice\r\n"
    # LineReceiver's own rule: a line longer than MAX_LENGTH drops the connection.
    await bob.send("z" * (LineReceiver.MAX_LENGTH + 10))
    close = await bob.wait_closed()
    assert (close.code, close.reason) == (3000, "Go away!")
    await harness.until(lambda: len(chat.members) == 1, "bob left the chat")


@pytest_twisted.ensureDeferred
async def test_chat_across_every_transport(harness: Harness, reactor: Any) -> None:
    """One chat room with a member on each transport; everybody hears everybody."""
    chat = ChatFactory()
    harness.mount("chat", chat)
    members = [harness.client(t, "chat") for t in ALL_TRANSPORTS]
    await gather(reactor, [m.open() for m in members])
    for member in members:
        await member.send(f"{member.transport} says hi\r\n")

    async def hears_everybody(member: Any) -> None:
        others = {f"{m.transport} says hi" for m in members if m is not member}
        heard: set[str] = set()
        text = ""
        while len(heard) < len(others):
            text += await member.recv()
            *lines, text = text.split("\r\n")
            heard.update(lines)
        assert heard == others

    await gather(reactor, [hears_everybody(m) for m in members])


# -- NetstringReceiver -------------------------------------------------------------------------


class Shout(NetstringReceiver):
    """Answers each netstring with its upper-case version. NetstringReceiver as shipped."""

    def stringReceived(self, string: bytes) -> None:
        self.sendString(string.upper())


def netstring(text: str) -> str:
    data = text.encode("utf-8")
    return f"{len(data)}:{text},"


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_netstring_receiver(harness: Harness, transport: str) -> None:
    """Netstrings split anywhere, several in a message; a malformed one drops the session."""
    harness.mount("netstring", Factory.forProtocol(Shout))
    client = await harness.open(transport, "netstring")
    stream = netstring("hello") + netstring("héllo wörld") + netstring("") + netstring("x" * 500)
    # Split the stream at awkward places: inside the length, after the colon, inside a
    # multi-byte character's neighbourhood, right before the comma.
    cuts = [1, 3, 8, 14, 19, 24, len(stream) - 1]
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for piece in pieces:
        await client.send(piece)
    expected = netstring("HELLO") + netstring("HéLLO WöRLD") + netstring("") + netstring("X" * 500)
    assert await client.recv_text(len(expected)) == expected
    await client.send("not a netstring")
    close = await client.wait_closed()
    assert (close.code, close.reason) == (3000, "Go away!")


# -- TimeoutMixin ------------------------------------------------------------------------------

IDLE_TIMEOUT = 0.3


class IdleLines(LineReceiver, policies.TimeoutMixin):
    """Echoes lines; TimeoutMixin drops the connection after IDLE_TIMEOUT of silence."""

    lost: Deferred[list[Failure]]

    def connectionMade(self) -> None:
        self.setTimeout(IDLE_TIMEOUT)

    def lineReceived(self, line: bytes) -> None:
        self.resetTimeout()
        self.sendLine(line)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.setTimeout(None)
        self.factory.lost.callback([reason])


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest.mark.parametrize("kind", ["TimeoutFactory", "TimeoutMixin"])
@pytest_twisted.ensureDeferred
async def test_timeout_mixin(harness: Harness, reactor: Any, transport: str, kind: str) -> None:
    """
    A protocol using TimeoutMixin (the global reactor's timers): activity keeps the session,
    silence closes it with 3000 "Go away!" and connectionLost(ConnectionDone).
    """
    if kind == "TimeoutFactory":
        # policies.TimeoutFactory wraps wire.Echo: both unmodified.
        factory: Any = policies.TimeoutFactory(
            Factory.forProtocol(wire.Echo), timeoutPeriod=IDLE_TIMEOUT
        )
    else:
        factory = Factory.forProtocol(IdleLines)
        factory.lost = Deferred()
    harness.mount("idle", factory)
    client = await harness.open(transport, "idle")
    await client.send("still here\r\n")
    assert await client.recv_text(12) == "still here\r\n"
    quiet_since = reactor.seconds()
    close = await client.wait_closed()
    assert (close.code, close.reason) == (3000, "Go away!")
    # Not before the timeout (the client heard the echo a little after the server wrote it).
    assert reactor.seconds() - quiet_since >= IDLE_TIMEOUT - 0.1
    if kind == "TimeoutMixin":
        [reason] = await with_timeout(reactor, factory.lost)
        assert reason.check(ConnectionDone)
    if transport == "raw-websocket":
        assert (client.ws_close.code, client.ws_close.reason) == (3000, "Go away!")


# -- FileSender --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_file_sender(harness: Harness, transport: str) -> None:
    """1 MB of UTF-8 text through FileSender (a pull producer), byte-exact, then a close."""
    factory = SendFileFactory(1_000_000)
    harness.mount("file", factory, response_limit=64 * 1024)
    client = harness.client(transport, "file")
    received = hashlib.sha256()
    total = 0
    closed: Deferred[Any] = Deferred()

    def sink(event: Any) -> None:
        nonlocal total
        if event.kind == "message":
            data = event.text.encode("utf-8")
            received.update(data)
            total += len(data)
        elif event.kind == "close":
            closed.callback(event)

    client.sink = sink
    await client.start()
    close = await with_timeout(harness.reactor, closed, 30)
    assert (close.code, close.reason) == (3000, "Go away!")
    [sent] = factory.files
    assert total == sent.size
    assert received.hexdigest() == sent.digest()
    if transport in ("xhr-streaming", "eventsource", "htmlfile"):
        assert client.reconnects >= 3  # response_limit: the stream reconnected


# -- coroutines --------------------------------------------------------------------------------


class AsyncLookup(Protocol):
    """
    Handles each message in a coroutine (``Deferred.fromCoroutine``), one at a time: reading
    is paused with ``transport.pauseProducing()`` while a lookup runs.
    """

    def dataReceived(self, data: bytes) -> None:
        self.transport.pauseProducing()
        handled = Deferred.fromCoroutine(self.handle(data))
        handled.addErrback(lambda failure: self.transport.abortConnection())
        handled.addBoth(lambda _: self.transport.resumeProducing())

    async def lookup(self, key: bytes) -> bytes:
        from twisted.internet import reactor

        # A stand-in for a database: the answer comes in a later reactor turn.
        return await deferLater(reactor, 0.001, lambda: key[::-1])

    async def handle(self, data: bytes) -> None:
        first = await self.lookup(data)
        second = await self.lookup(first + b"!")
        self.transport.write(b"%s -> %s" % (data, second))


class AsyncioLookup(AsyncLookup):
    """The same, awaiting asyncio coroutines (only on the asyncio reactor)."""

    async def lookup(self, key: bytes) -> bytes:
        async def native() -> bytes:
            await asyncio.sleep(0)
            return key[::-1]

        return await Deferred.fromFuture(asyncio.ensure_future(native()))


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
@pytest.mark.parametrize("flavour", ["twisted", "asyncio"])
@pytest_twisted.ensureDeferred
async def test_coroutine_protocol(
    harness: Harness, reactor: Any, transport: str, flavour: str
) -> None:
    """A coroutine protocol handles messages in order, several sent in one request."""
    if flavour == "asyncio":
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor

        if not isinstance(reactor, AsyncioSelectorReactor):
            pytest.skip("asyncio coroutines need --reactor asyncio")
        protocol: type[Protocol] = AsyncioLookup
    else:
        protocol = AsyncLookup
    harness.mount("lookup", Factory.forProtocol(protocol))
    client = await harness.open(transport, "lookup")
    keys = ["abc", "ünï", "☃ snow", "4", "5"]
    await client.send(*keys)
    assert await client.recv_many(len(keys)) == [f"{key} -> !{key}" for key in keys]
