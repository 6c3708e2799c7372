"""
Channels in one process, and the Redis bridge against an in-memory Redis (the real
txredisapi protocols over StringTransports, the RESP bytes written by hand), on a Clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txsockjs.channels import Channels, IChannelBridge
from txsockjs.redis import RedisBridge, RedisURL, parseRedisURL

from .conftest import Service

# -- one process ------------------------------------------------------------------------------


class Written:
    """A plain transport: records what is written."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def test_publishReachesEveryMemberOfTheChannelOnly() -> None:
    channels = Channels()
    alice, bob, carol = Written(), Written(), Written()
    channels.join("lobby", alice)  # type: ignore[arg-type]
    channels.join("lobby", bob)  # type: ignore[arg-type]
    channels.join("kitchen", carol)  # type: ignore[arg-type]
    channels.publish("lobby", "hello ☃")
    channels.publish("nobody-here", "lost")
    assert alice.written == bob.written == ["hello ☃".encode()]
    assert carol.written == []
    assert channels.names == ["kitchen", "lobby"]
    assert channels.members("lobby") == {alice, bob}
    assert channels.stats() == {"channels": 2, "members": 3, "published": 2, "received": 0}


def test_leaveAndLeaveAll() -> None:
    channels = Channels()
    alice, bob = Written(), Written()
    for name in ("a", "b"):
        channels.join(name, alice)  # type: ignore[arg-type]
    channels.join("a", bob)  # type: ignore[arg-type]
    assert channels.channelsOf(alice) == {"a", "b"}  # type: ignore[arg-type]
    channels.leave("a", alice)  # type: ignore[arg-type]
    channels.leave("a", alice)  # type: ignore[arg-type]
    channels.leave("never", alice)  # type: ignore[arg-type]
    channels.publish("a", "one")
    assert alice.written == [] and bob.written == [b"one"]
    channels.leaveAll(bob)  # type: ignore[arg-type]
    assert channels.names == ["b"]
    channels.leaveAll(alice)  # type: ignore[arg-type]
    assert channels.names == []
    assert channels.channelsOf(alice) == frozenset()  # type: ignore[arg-type]


def test_messagesAreText() -> None:
    with pytest.raises(TypeError):
        Channels().publish("a", b"bytes")  # type: ignore[arg-type]


def test_urlAndBridgeTogetherAreRefused() -> None:
    with pytest.raises(ValueError):
        Channels("redis://localhost", bridge=FakeBridge())
    with pytest.raises(TypeError):
        Channels(queue_limit=3)


def test_sockjsSessionsGetTheMessageAndClosedOnesLeave(make_service: Any) -> None:
    service: Service = make_service()
    channels = Channels()
    for name in ("a", "b", "c"):
        service.http.post(f"/s/0/{name}/xhr")
    sessions = [protocol.transport for protocol in service.protocols]
    for session in sessions:
        channels.join("room", session)  # type: ignore[arg-type]
    sessions[2].close()  # type: ignore[union-attr]
    service.turn()
    service.http.post("/s/0/c/xhr")  # the close frame: session c is closed now
    channels.publish("room", "hi €")
    service.turn()
    for name in ("a", "b"):
        assert service.http.post(f"/s/0/{name}/xhr").response.body == b'a["hi \\u20ac"]\n'
    assert channels.members("room") == set(sessions[:2])


@implementer(IChannelBridge)
class FakeBridge:
    """Records what Channels asks of its bridge."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.deliver: Callable[[str, str], None] | None = None

    def start(self, deliver: Callable[[str, str], None]) -> None:
        self.calls.append(("start",))
        self.deliver = deliver

    def subscribe(self, channel: str) -> None:
        self.calls.append(("subscribe", channel))

    def unsubscribe(self, channel: str) -> None:
        self.calls.append(("unsubscribe", channel))

    def publish(self, channel: str, message: str) -> None:
        self.calls.append(("publish", channel, message))

    def stats(self) -> dict[str, Any]:
        return {"fake": True}

    def close(self) -> Deferred[None]:
        self.calls.append(("close",))
        return succeed(None)


def test_theBridgeIsSubscribedOnlyWhileThereAreMembers() -> None:
    bridge = FakeBridge()
    verifyObject(IChannelBridge, bridge)
    channels = Channels(bridge=bridge)
    alice, bob = Written(), Written()
    channels.join("room", alice)  # type: ignore[arg-type]
    channels.join("room", bob)  # type: ignore[arg-type]
    channels.leave("room", alice)  # type: ignore[arg-type]
    channels.publish("room", "local first")
    assert bob.written == [b"local first"]
    channels.leaveAll(bob)  # type: ignore[arg-type]
    assert bridge.calls == [
        ("start",),
        ("subscribe", "room"),
        ("publish", "room", "local first"),
        ("unsubscribe", "room"),
    ]
    channels.join("room", alice)  # type: ignore[arg-type]
    assert bridge.deliver is not None
    bridge.deliver("room", "from elsewhere")
    assert alice.written == [b"from elsewhere"]
    assert channels.stats()["received"] == 1
    assert channels.stats()["bridge"] == {"fake": True}
    channels.close()
    channels.close()
    assert bridge.calls[-2:] == [("subscribe", "room"), ("close",)]


# -- the Redis bridge ----------------------------------------------------------------------------


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def array(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


def commands(transport: StringTransport) -> list[list[bytes]]:
    """The RESP commands written to ``transport`` since the last call."""
    data = transport.value()
    transport.clear()
    parsed: list[list[bytes]] = []
    while data:
        assert data.startswith(b"*"), data
        count, _, data = data[1:].partition(b"\r\n")
        command = []
        for _ in range(int(count)):
            size, _, data = data[1:].partition(b"\r\n")
            command.append(data[: int(size)])
            data = data[int(size) + 2 :]
        parsed.append(command)
    return parsed


@implementer(IStreamClientEndpoint)
class FakeRedis:
    """An endpoint whose connections are StringTransports; can be down."""

    def __init__(self) -> None:
        self.up = True
        self.attempts = 0
        self.live: list[tuple[Any, StringTransport]] = []

    def connect(self, factory: Any) -> Deferred[Any]:
        self.attempts += 1
        if not self.up:
            return fail(ConnectionRefusedError())
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 6379))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.live.append((protocol, transport))
        return succeed(protocol)

    def link(self, kind: str) -> tuple[Any, StringTransport]:
        """The live connection of one kind ('publish' or 'subscribe')."""
        found = [
            (protocol, transport)
            for protocol, transport in self.live
            if protocol._protocol.factory.kind == kind
        ]
        assert len(found) == 1, found
        return found[0]

    def stop(self) -> None:
        """Redis goes away: every connection is closed, new ones are refused."""
        self.up = False
        live, self.live = self.live, []
        for protocol, _ in live:
            protocol.connectionLost(Failure(ConnectionDone()))


class Cluster:
    """A bridge on a FakeRedis and a Clock, with one Channels using it."""

    def __init__(self, **options: Any) -> None:
        self.clock = Clock()
        self.redis = FakeRedis()
        options.setdefault("reply_timeout", None)
        self.bridge = RedisBridge(
            "redis://127.0.0.1:6379/2",
            reactor=self.clock,
            endpoint=self.redis,
            jitter=lambda: 0.5,
            **options,
        )
        self.channels = Channels(bridge=self.bridge)

    def sent(self, kind: str) -> list[list[bytes]]:
        return commands(self.redis.link(kind)[1])

    def reply(self, kind: str, data: bytes) -> None:
        self.redis.link(kind)[0].dataReceived(data)
        self.clock.advance(0)

    def message(self, channel: bytes, payload: bytes) -> None:
        self.reply("subscribe", array(bulk(b"message"), bulk(channel), bulk(payload)))

    def close(self) -> None:
        self.channels.close()
        assert self.clock.getDelayedCalls() == []


def test_parseRedisURL() -> None:
    assert parseRedisURL("redis://localhost") == RedisURL("localhost", 6379, 0)
    url = parseRedisURL("redis://:s%40cret@10.0.0.5:6380/3")
    assert url == RedisURL("10.0.0.5", 6380, 3, None, "s@cret")
    assert str(url) == "redis://:***@10.0.0.5:6380/3"
    assert parseRedisURL("redis://user:pw@[::1]/1") == RedisURL("::1", 6379, 1, "user", "pw")
    for bad in ("http://x", "redis://", "redis://h:port", "redis://h/x", "redis://h/1?a=b"):
        with pytest.raises(ValueError):
            parseRedisURL(bad)


def test_subscribesWhileMembersExistAndPublishesWithOriginAndSequence() -> None:
    cluster = Cluster()
    alice, bob = Written(), Written()
    cluster.channels.join("room", alice)  # type: ignore[arg-type]
    cluster.channels.join("room", bob)  # type: ignore[arg-type]
    assert cluster.sent("subscribe") == [[b"SUBSCRIBE", b"txsockjs:2:room"]]
    cluster.reply("subscribe", array(bulk(b"subscribe"), bulk(b"txsockjs:2:room"), b":1\r\n"))
    cluster.channels.publish("room", "one ☃")
    cluster.channels.publish("room", "two")
    assert alice.written == bob.written == ["one ☃".encode(), b"two"]
    published = cluster.sent("publish")
    assert [command[:2] for command in published] == [[b"PUBLISH", b"txsockjs:2:room"]] * 2
    origin, one, text = published[0][2].split(b" ", 2)
    assert (one, text) == (b"1", "one ☃".encode())
    assert published[1][2] == origin + b" 2 two"
    cluster.reply("publish", b":3\r\n:3\r\n")
    stats = cluster.bridge.stats()
    assert (stats["sent"], stats["confirmed"], stats["in_flight"]) == (2, 2, 0)
    # Redis sends our own messages back: already delivered, skipped.
    cluster.message(b"txsockjs:2:room", published[0][2])
    assert len(alice.written) == 2
    cluster.channels.leave("room", alice)  # type: ignore[arg-type]
    assert cluster.sent("subscribe") == []
    cluster.channels.leave("room", bob)  # type: ignore[arg-type]
    assert cluster.sent("subscribe") == [[b"UNSUBSCRIBE", b"txsockjs:2:room"]]
    cluster.close()


def test_othersMessagesAreDeliveredOnceInOrder() -> None:
    cluster = Cluster()
    alice = Written()
    cluster.channels.join("room", alice)  # type: ignore[arg-type]
    cluster.message(b"txsockjs:2:room", b"other 1 first")
    cluster.message(b"txsockjs:2:room", b"other 2 second \xe2\x98\x83")
    cluster.message(b"txsockjs:2:room", b"other 2 second again")  # sent twice
    cluster.message(b"txsockjs:2:room", b"another 1 hello")
    cluster.message(b"txsockjs:2:elsewhere", b"other 3 not subscribed")
    cluster.message(b"txsockjs:9:room", b"other 4 another namespace")
    cluster.message(b"txsockjs:2:room", b"no-sequence")
    cluster.message(b"txsockjs:2:room", b"other 5 \xff")
    assert alice.written == [b"first", "second ☃".encode(), b"hello"]
    stats = cluster.bridge.stats()
    assert (stats["received"], stats["duplicates"], stats["malformed"]) == (3, 1, 3)
    cluster.close()


def test_inFlightLimitQueuesTheRest() -> None:
    cluster = Cluster(in_flight_limit=2)
    cluster.clock.advance(0)
    for n in range(4):
        cluster.channels.publish("room", str(n))
    assert [command[2][-1:] for command in cluster.sent("publish")] == [b"0", b"1"]
    assert cluster.bridge.stats()["queued"] == 2
    cluster.reply("publish", b":0\r\n")
    assert [command[2][-1:] for command in cluster.sent("publish")] == [b"2"]
    cluster.reply("publish", b":0\r\n:0\r\n")
    assert [command[2][-1:] for command in cluster.sent("publish")] == [b"3"]
    assert cluster.bridge.stats()["in_flight"] == 1
    cluster.close()


def test_redisOutage_boundedQueueReconnectResubscribeResend() -> None:
    cluster = Cluster(queue_limit=3)
    alice = Written()
    cluster.channels.join("room", alice)  # type: ignore[arg-type]
    cluster.sent("subscribe")
    cluster.channels.publish("room", "m1")
    cluster.channels.publish("room", "m2")
    cluster.reply("publish", b":1\r\n")  # m1 confirmed, m2 not yet
    cluster.sent("publish")
    cluster.redis.stop()
    assert cluster.bridge.stats()["connected"] is False
    for n in range(3, 7):
        cluster.channels.publish("room", f"m{n}")
    # Local members are never held up by Redis.
    assert alice.written == [b"m1", b"m2", b"m3", b"m4", b"m5", b"m6"]
    stats = cluster.bridge.stats()
    # m2 (unconfirmed) went back to the queue; the queue keeps the 3 newest: m4, m5, m6.
    assert (stats["requeued"], stats["dropped"], stats["queued"]) == (1, 2, 3)

    # Reconnection attempts back off: 0.25 s, 0.5 s, 1 s (jitter fixed at the middle).
    attempts = cluster.redis.attempts
    cluster.clock.advance(0.24)
    assert cluster.redis.attempts == attempts
    cluster.clock.advance(0.02)
    assert cluster.redis.attempts == attempts + 2  # both connections tried again
    cluster.clock.advance(0.47)
    assert cluster.redis.attempts == attempts + 2
    cluster.clock.advance(0.04)
    assert cluster.redis.attempts == attempts + 4
    cluster.redis.up = True
    cluster.clock.advance(1.0)
    assert cluster.bridge.stats()["connected"] is True
    assert cluster.sent("subscribe") == [[b"SUBSCRIBE", b"txsockjs:2:room"]]
    # What was queued waits resume_delay for the other processes to subscribe again, and
    # the queue is still bounded meanwhile (m7 pushes m4 out).
    cluster.channels.publish("room", "m7")
    assert cluster.sent("publish") == []
    assert cluster.bridge.stats()["dropped"] == 3
    cluster.clock.advance(1.0)
    payloads = [command[2].split(b" ", 2) for command in cluster.sent("publish")]
    assert [text for _, _, text in payloads] == [b"m5", b"m6", b"m7"]
    assert [int(sequence) for _, sequence, _ in payloads] == [5, 6, 7]
    cluster.channels.publish("room", "m8")
    assert [command[2][-2:] for command in cluster.sent("publish")] == [b"m8"]
    cluster.close()


def test_withoutAQueueMessagesAreSentWhenConnectedAndDroppedWhenNot() -> None:
    cluster = Cluster(queue_limit=0)
    cluster.channels.publish("room", "sent")
    assert [command[2][-4:] for command in cluster.sent("publish")] == [b"sent"]
    cluster.reply("publish", b":0\r\n")
    cluster.redis.stop()
    cluster.channels.publish("room", "dropped")
    stats = cluster.bridge.stats()
    assert (stats["confirmed"], stats["dropped"], stats["queued"]) == (1, 1, 0)
    cluster.close()


def test_aFailedAuthBacksOffAndIsRetried() -> None:
    cluster = Cluster()
    cluster.bridge.url = parseRedisURL("redis://:wrong@127.0.0.1:6379/2")
    cluster.clock.advance(0)
    cluster.channels.start()
    protocol, transport = cluster.redis.link("publish")
    assert commands(transport) == [[b"AUTH", b"wrong"]]
    protocol.dataReceived(b"-WRONGPASS invalid username-password pair\r\n")
    cluster.clock.advance(0)
    assert transport.disconnecting
    assert cluster.bridge._rejections["publish"] == 1
    cluster.channels.close()


def test_closeStopsReconnecting() -> None:
    cluster = Cluster()
    cluster.channels.publish("room", "start")
    cluster.redis.stop()
    attempts = cluster.redis.attempts
    done: list[object] = []
    cluster.channels.close().addCallback(done.append)
    cluster.clock.advance(60)
    assert done == [None]
    assert cluster.redis.attempts == attempts
    assert cluster.clock.getDelayedCalls() == []
    cluster.channels.publish("room", "after close: local only")
    assert cluster.bridge.stats()["queued"] == 0


# -- twistd sockjs --redis ----------------------------------------------------------------------


def parseTap(*argv: str) -> Any:
    from twisted.internet.testing import MemoryReactorClock

    from txsockjs import tap

    options = tap.Options(reactor=MemoryReactorClock())
    options.parseOptions(list(argv))
    return options


def test_twistdRedisMakesTheDemoChatOneRoomAcrossProcesses() -> None:
    from txsockjs import tap

    options = parseTap("--redis=redis://127.0.0.1:6399/4", "--listen=tcp:0")
    channels = tap.demoChannels(options)
    assert isinstance(channels, Channels)
    assert isinstance(channels.bridge, RedisBridge)
    assert channels.bridge.url == RedisURL("127.0.0.1", 6399, 4)
    made: list[Any] = []

    def recorder(factory: Any, **kwargs: Any) -> Any:
        from twisted.web.resource import Resource

        made.append(factory)
        return Resource()

    tap.buildRoot(options, recorder, channels)
    [_, chat] = made
    assert chat.channels is channels

    # The service connects to Redis when it starts, and closes the connections at stop.
    service = tap.makeService(options)
    service.startService()
    reactor = options.reactor()
    connecting = [(host, port) for host, port, *_ in reactor.tcpClients]
    assert connecting == [("127.0.0.1", 6399)] * 2
    service.stopService()


def test_twistdRedisNeedsTheDemoAndARedisURL() -> None:
    from twisted.python.usage import UsageError

    with pytest.raises(UsageError, match="--factory"):
        parseTap("--redis=redis://localhost", "--factory=twisted.protocols.wire.Echo")
    with pytest.raises(UsageError, match="--redis: not a redis:// URL"):
        parseTap("--redis=http://localhost")
    from txsockjs import tap

    assert tap.demoChannels(parseTap()).bridge is None  # type: ignore[union-attr]
    assert tap.demoChannels(parseTap("--factory=twisted.protocols.wire.Echo")) is None
