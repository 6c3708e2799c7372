"""
The Redis pub/sub bridge of :class:`txsockjs.channels.Channels`, on txredisapi.

Install it with ``pip install txsockjs[redis]``. Each process keeps two connections to
Redis: one that publishes, and one that is subscribed to the channels that have members in
this process (``SUBSCRIBE`` when the first member joins, ``UNSUBSCRIBE`` when the last one
leaves). Both reconnect on their own with an exponential backoff (0.25 s doubling up to
10 s, +/- 10 % jitter), and the subscriber subscribes again to every channel that has
members.

What happens while Redis is unreachable, the bounded policy:

* published messages wait in a queue of at most ``queue_limit`` messages (1000 by
  default), as do messages beyond ``in_flight_limit`` sent but not yet confirmed by Redis;
* when the queue is full, the oldest queued message is dropped and counted (``dropped`` in
  :meth:`RedisBridge.stats`); a warning is logged once per outage;
* messages written to a connection that was lost before Redis confirmed them are queued
  again, in order, ahead of the rest;
* when the connection is back after an outage, the queue is sent ``resume_delay`` seconds
  (1 s) later, so that the other processes, reconnecting on the same schedule, have
  subscribed again by then.

Nothing ever blocks the reactor, and memory stays bounded. Redis pub/sub delivers at most
once: a process that is not subscribed when a message goes through Redis never sees it.

Each message travels as ``<origin> <sequence> <UTF-8 text>``: ``<origin>`` is a random id of
the publishing process, which skips its own messages (it delivered them already), and the
sequence number lets receivers drop a message sent twice (queued again after a lost
connection, although Redis had seen it). The Redis channel of channel ``NAME`` is
``<namespace>:<db>:NAME``: pub/sub ignores Redis database numbers, so the database number
of the URL is part of the channel names instead, which keeps deployments that share a Redis
server on different database numbers apart.
"""

from __future__ import annotations

import ipaddress
import random
import urllib.parse
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import txredisapi  # type: ignore[import-untyped]
from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ._core.events import OBSERVER
from .channels import IChannelBridge

__all__ = ["RedisBridge", "RedisURL", "parseRedisURL"]

_log = Logger(observer=OBSERVER)

#: Defaults of :class:`RedisBridge`.
QUEUE_LIMIT = 1000
IN_FLIGHT_LIMIT = 1000
INITIAL_DELAY = 0.25
MAX_DELAY = 10.0
RESUME_DELAY = 1.0
#: How many publishing processes a receiver remembers the last sequence number of.
ORIGINS_REMEMBERED = 4096


@dataclass(frozen=True)
class RedisURL:
    """The parts of a ``redis://`` URL."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        """The URL, without the password."""
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}:***@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{auth}{host}:{self.port}/{self.db}"


def parseRedisURL(url: str) -> RedisURL:
    """
    Parse ``redis://[[username]:password@]host[:port][/db]``.

    :raises ValueError: for another scheme, a missing host, or a bad port or database.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"not a redis:// URL: {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in the Redis URL {url!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"bad port in the Redis URL {url!r}") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the Redis URL's path must be a database number, not {path!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the Redis URL takes no query or fragment: {url!r}")
    unquote = urllib.parse.unquote
    return RedisURL(
        host=parts.hostname,
        port=port,
        db=int(path) if path else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _backoff(
    initial: float, maximum: float, jitter: Callable[[], float]
) -> Callable[[int], float]:
    """Seconds before retry ``attempt`` (1, 2, ...): doubling from ``initial`` to ``maximum``."""

    def delay(attempt: int) -> float:
        base: float = min(initial * 2.0 ** min(attempt - 1, 60), maximum)
        return base * (0.9 + 0.2 * jitter())

    return delay


class _Publisher(txredisapi.BaseRedisProtocol):  # type: ignore[misc]
    """The publishing connection."""

    bridge: RedisBridge

    def connectionLost(self, why: Failure) -> None:
        self.bridge._publisherLost(self)
        super().connectionLost(why)


class _Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    """The subscribed connection: hands every message to the bridge."""

    bridge: RedisBridge

    def messageReceived(self, pattern: object, channel: object, message: object) -> None:
        self.bridge._messageReceived(channel, message)

    def connectionLost(self, why: Failure) -> None:
        self.bridge._subscriberLost(self)
        super().connectionLost(why)


class _LinkFactory(Factory):
    """Builds one kind of txredisapi protocol for a bridge, with bytes in and out."""

    noisy = False

    def __init__(self, bridge: RedisBridge, protocolClass: type[Any], kind: str) -> None:
        self.bridge = bridge
        self.protocolClass = protocolClass
        self.kind = kind
        # What txredisapi's connectionMade reads from its factory when AUTH fails.
        self.isLazy = True

    def buildProtocol(self, addr: object) -> Any:
        bridge = self.bridge
        protocol = self.protocolClass(
            charset=None,
            password=bridge.url.password,
            username=bridge.url.username,
            dbid=None,
            convertNumbers=False,
            replyTimeout=bridge.replyTimeout,
        )
        protocol.factory = self
        protocol.bridge = bridge
        # txredisapi's timers (reply timeouts, parsing the rest of a read) on our reactor.
        protocol.callLater = bridge.reactor.callLater
        protocol.whenConnected().addCallback(bridge._linkReady, self.kind)
        return protocol

    def stopTrying(self) -> None:
        """txredisapi gives up after a failed AUTH; we keep retrying with the backoff."""

    def connectionError(self, why: str) -> None:
        # Counted, so that the backoff keeps growing although each TCP connection succeeds.
        self.bridge._rejections[self.kind] += 1
        _log.error(
            "txsockjs Redis {kind} connection to {url}: {why}",
            kind=self.kind,
            url=str(self.bridge.url),
            why=why,
        )


@implementer(IChannelBridge)
class RedisBridge:
    """
    Carries the messages of :class:`~txsockjs.channels.Channels` between processes through
    Redis pub/sub.

    :param url: ``redis://[[username]:password@]host[:port][/db]``.
    :param reactor: the reactor (the global one if not given).
    :param namespace: first part of the Redis channel names.
    :param queue_limit: most messages kept while Redis is unreachable; beyond it the
        oldest is dropped and counted.
    :param in_flight_limit: most messages sent to Redis and not yet confirmed; beyond it
        messages wait in the queue.
    :param reply_timeout: seconds Redis may take to confirm a message before the
        connection is considered dead and made again (``None``: no limit).
    :param initial_delay: seconds before the first reconnection attempt.
    :param max_delay: longest wait between reconnection attempts.
    :param resume_delay: seconds between reconnecting after an outage and sending what
        was queued during it.
    :param endpoint: where to connect (instead of the URL's host and port; for tests).
    :param jitter: random numbers in [0, 1) that spread the reconnection attempts.
    """

    def __init__(
        self,
        url: str,
        *,
        reactor: IReactorTime | None = None,
        namespace: str = "txsockjs",
        queue_limit: int = QUEUE_LIMIT,
        in_flight_limit: int = IN_FLIGHT_LIMIT,
        reply_timeout: float | None = 10.0,
        initial_delay: float = INITIAL_DELAY,
        max_delay: float = MAX_DELAY,
        resume_delay: float = RESUME_DELAY,
        endpoint: IStreamClientEndpoint | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if queue_limit < 0 or in_flight_limit < 1:
            raise ValueError("queue_limit must be 0 or more, and in_flight_limit 1 or more")
        self.url = parseRedisURL(url)
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        assert reactor is not None
        self.reactor: IReactorTime = reactor
        self.replyTimeout = reply_timeout
        self.queueLimit = queue_limit
        self.inFlightLimit = in_flight_limit
        self.resumeDelay = resume_delay
        self._prefix = f"{namespace}:{self.url.db}:".encode()
        self._origin = uuid.uuid4().hex.encode("ascii")
        self._sequence = 0
        self._endpoint = endpoint
        self._policy = _backoff(initial_delay, max_delay, jitter)
        #: Connections in a row that Redis refused (AUTH failed), per kind of connection.
        self._rejections = {"publish": 0, "subscribe": 0}
        self._deliver: Callable[[str, str], None] | None = None
        self._services: list[ClientService] = []
        self._publisher: _Publisher | None = None
        self._subscriber: _Subscriber | None = None
        self._publisherSeen = False
        self._resuming: IDelayedCall | None = None
        self._wanted: set[str] = set()
        #: Messages (Redis channel, payload) waiting to be sent, oldest first.
        self._queue: deque[tuple[bytes, bytes]] = deque()
        #: Messages sent on the current publishing connection, not yet confirmed.
        self._unconfirmed: deque[tuple[bytes, bytes]] = deque()
        #: The last sequence number received from each publishing process.
        self._lastSeen: OrderedDict[bytes, int] = OrderedDict()
        self._closed = False
        self._dropWarned = False
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "published",  # publish() calls
                "sent",  # PUBLISH commands written to Redis (resent ones too)
                "confirmed",  # ... and confirmed by Redis
                "requeued",  # ... queued again: their connection was lost before the reply
                "failed",  # ... refused by Redis with an error
                "dropped",  # queued messages dropped because the queue was full
                "received",  # messages of other processes delivered
                "duplicates",  # ... received twice and delivered once
                "malformed",  # messages on our channels that were not ours to read
                "connections",  # connections made (both kinds)
            ),
            0,
        )

    # -- IChannelBridge -------------------------------------------------------------------------

    def start(self, deliver: Callable[[str, str], None]) -> None:
        """Connect to Redis (and keep reconnecting); hand other processes' messages over."""
        if self._deliver is not None:
            raise RuntimeError("RedisBridge.start() called twice")
        self._deliver = deliver
        for protocolClass, kind in ((_Publisher, "publish"), (_Subscriber, "subscribe")):
            service = ClientService(
                self._makeEndpoint(),
                _LinkFactory(self, protocolClass, kind),
                retryPolicy=self._retryPolicy(kind),
                clock=self.reactor,
            )
            self._services.append(service)
            service.startService()

    def subscribe(self, channel: str) -> None:
        """Receive ``channel``'s messages (now, or as soon as connected)."""
        if channel in self._wanted:
            return
        self._wanted.add(channel)
        if self._subscriber is not None:
            self._command(self._subscriber.subscribe, channel, "SUBSCRIBE")

    def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``'s messages."""
        if channel not in self._wanted:
            return
        self._wanted.discard(channel)
        if self._subscriber is not None:
            self._command(self._subscriber.unsubscribe, channel, "UNSUBSCRIBE")

    def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to the other processes: now, or queued (bounded) until we can."""
        if self._closed:
            return
        self.counters["published"] += 1
        self._sequence += 1
        payload = b"%s %d %s" % (
            self._origin,
            self._sequence,
            message.encode("utf-8", "surrogatepass"),
        )
        self._queue.append((self._key(channel), payload))
        self._drain()
        self._trim()

    def stats(self) -> dict[str, Any]:
        """Counters, the queue's length and whether both connections are up."""
        return {
            **self.counters,
            "queued": len(self._queue),
            "in_flight": len(self._unconfirmed),
            "subscribed": len(self._wanted),
            "connected": self._publisher is not None and self._subscriber is not None,
        }

    def close(self) -> Deferred[None]:
        """Stop reconnecting and close both connections; queued messages are dropped."""
        self._closed = True
        self._queue.clear()
        if self._resuming is not None and self._resuming.active():
            self._resuming.cancel()
        self._resuming = None
        stopping = [service.stopService() for service in self._services]
        self._services = []
        if not stopping:
            return succeed(None)
        done: Deferred[Any] = gatherResults(stopping, consumeErrors=True)
        return done.addCallback(lambda _: None)

    # -- connections ----------------------------------------------------------------------------

    def _retryPolicy(self, kind: str) -> Callable[[int], float]:
        def delay(attempt: int) -> float:
            return self._policy(max(attempt, self._rejections[kind]))

        return delay

    def _makeEndpoint(self) -> IStreamClientEndpoint:
        if self._endpoint is not None:
            return self._endpoint
        reactor: Any = self.reactor
        host, port = self.url.host, self.url.port
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return HostnameEndpoint(reactor, host, port, timeout=5)
        # An address needs no resolver (older Twisted sends even literals through one).
        if address.version == 6:
            return TCP6ClientEndpoint(reactor, host, port, timeout=5)
        return TCP4ClientEndpoint(reactor, host, port, timeout=5)

    def _linkReady(self, protocol: Any, kind: str) -> None:
        if self._closed:
            return
        self.counters["connections"] += 1
        self._rejections[kind] = 0
        transport = protocol.transport
        if hasattr(transport, "setTcpKeepAlive"):
            transport.setTcpKeepAlive(1)
        _log.info(
            "txsockjs Redis {kind} connection to {url} is up",
            kind=kind,
            url=str(self.url),
        )
        if kind == "subscribe":
            self._subscriber = protocol
            for channel in sorted(self._wanted):
                self._command(protocol.subscribe, channel, "SUBSCRIBE")
            return
        self._publisher = protocol
        if self._publisherSeen and self._queue and self.resumeDelay > 0:
            # After an outage: give the other processes time to subscribe again.
            self._resuming = self.reactor.callLater(self.resumeDelay, self._resume)
        else:
            self._drain()
        self._publisherSeen = True

    def _resume(self) -> None:
        self._resuming = None
        self._drain()

    def _publisherLost(self, protocol: _Publisher) -> None:
        if self._publisher is not protocol:
            return
        self._publisher = None
        if self._resuming is not None and self._resuming.active():
            self._resuming.cancel()
        self._resuming = None
        if self._unconfirmed and not self._closed:
            # Maybe Redis had them, maybe not: send them again (receivers drop duplicates).
            self.counters["requeued"] += len(self._unconfirmed)
            self._queue.extendleft(reversed(self._unconfirmed))
            self._unconfirmed.clear()
            self._trim()
        self._lost("publish")

    def _subscriberLost(self, protocol: _Subscriber) -> None:
        if self._subscriber is protocol:
            self._subscriber = None
            self._lost("subscribe")

    def _lost(self, kind: str) -> None:
        if not self._closed:
            _log.warn(
                "txsockjs Redis {kind} connection to {url} lost; reconnecting",
                kind=kind,
                url=str(self.url),
            )

    def _command(
        self, method: Callable[[list[bytes]], Deferred[Any]], channel: str, name: str
    ) -> None:
        try:
            d = method([self._key(channel)])
        except txredisapi.ConnectionError:
            return  # lost in the meantime: subscribed again on the next connection
        d.addErrback(self._commandFailed, name, channel)

    def _commandFailed(self, failure: Failure, name: str, channel: str) -> None:
        if not failure.check(txredisapi.ConnectionError):
            _log.failure(
                "txsockjs Redis {command} {channel} failed",
                failure,
                command=name,
                channel=channel,
            )

    # -- publishing -----------------------------------------------------------------------------

    def _key(self, channel: str) -> bytes:
        return self._prefix + channel.encode("utf-8", "surrogatepass")

    def _trim(self) -> None:
        """Drop the oldest queued messages beyond ``queue_limit``."""
        excess = len(self._queue) - self.queueLimit
        if excess <= 0:
            return
        for _ in range(excess):
            self._queue.popleft()
        self.counters["dropped"] += excess
        if not self._dropWarned:
            self._dropWarned = True
            _log.warn(
                "txsockjs Redis queue full ({limit} messages): dropping the oldest until "
                "Redis is back",
                limit=self.queueLimit,
            )

    def _drain(self) -> None:
        """Send queued messages while connected and under the in-flight limit."""
        if self._resuming is not None:
            return
        while self._queue and len(self._unconfirmed) < self.inFlightLimit:
            publisher = self._publisher
            if publisher is None:
                return
            item = self._queue[0]
            try:
                d = publisher.publish(*item)
            except txredisapi.ConnectionError:
                return
            self._queue.popleft()
            self._unconfirmed.append(item)
            self.counters["sent"] += 1
            d.addCallbacks(
                self._confirmed,
                self._notConfirmed,
                callbackArgs=(publisher,),
                errbackArgs=(publisher,),
            )
        if not self._queue and self._dropWarned:
            self._dropWarned = False
            _log.info(
                "txsockjs Redis queue drained; {dropped} message(s) dropped so far",
                dropped=self.counters["dropped"],
            )

    def _confirmed(self, receivers: object, publisher: _Publisher) -> None:
        if publisher is self._publisher and self._unconfirmed:
            self._unconfirmed.popleft()
            self.counters["confirmed"] += 1
            self._drain()

    def _notConfirmed(self, failure: Failure, publisher: _Publisher) -> None:
        if failure.check(txredisapi.ConnectionError):
            return  # the connection is lost: _publisherLost queued the message again
        _log.failure("txsockjs Redis PUBLISH failed", failure)
        if publisher is self._publisher and self._unconfirmed:
            self._unconfirmed.popleft()
            self.counters["failed"] += 1
            self._drain()

    # -- receiving ------------------------------------------------------------------------------

    def _messageReceived(self, channel: object, message: object) -> None:
        if not isinstance(channel, bytes) or not isinstance(message, bytes):
            self.counters["malformed"] += 1
            return
        if not channel.startswith(self._prefix):
            self.counters["malformed"] += 1
            return
        parts = message.split(b" ", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            self.counters["malformed"] += 1
            return
        origin, sequenceText, body = parts
        if origin == self._origin:
            return
        try:
            name = channel[len(self._prefix) :].decode("utf-8", "surrogatepass")
            text = body.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            self.counters["malformed"] += 1
            return
        if name not in self._wanted or self._deliver is None:
            return
        sequence = int(sequenceText)
        last = self._lastSeen.pop(origin, 0)
        self._lastSeen[origin] = max(last, sequence)
        if len(self._lastSeen) > ORIGINS_REMEMBERED:
            self._lastSeen.popitem(last=False)
        if sequence <= last:
            self.counters["duplicates"] += 1
            return
        self.counters["received"] += 1
        try:
            self._deliver(name, text)
        except Exception:
            _log.failure(
                "txsockjs: delivering a message of channel {channel} failed", channel=name
            )
