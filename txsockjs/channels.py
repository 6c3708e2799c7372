"""
Channels (rooms): named groups of connections that a message is published to.

In one process a :class:`Channels` needs nothing else::

    channels = Channels()
    channels.join("lobby", self.transport)        # in connectionMade
    channels.publish("lobby", "hello")            # every member gets "hello"
    channels.leaveAll(self.transport)             # in connectionLost

Given a Redis URL, the same calls reach the members of the channel in every process that
uses the same Redis server and database number::

    channels = Channels("redis://127.0.0.1:6379/0")

A message is encoded once per process for all of its SockJS members
(:func:`txsockjs.broadcast`), and the messages one process publishes to one channel reach
every process in the order they were published. The members of the publishing process get
the message at once, the others through Redis pub/sub (see :mod:`txsockjs.redis` for what
happens while Redis is down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime, ITransport
from zope.interface import Interface

from ._core.message import broadcast

__all__ = ["Channels", "IChannelBridge"]


class IChannelBridge(Interface):
    """
    Carries the messages of :class:`Channels` to other processes (Redis pub/sub, in
    :class:`txsockjs.redis.RedisBridge`).

    The bridge delivers only the messages published by other processes: the publishing
    process delivers its own messages to its own members itself.
    """

    def start(deliver: Callable[[str, str], None]) -> None:
        """
        Start (connect); from now on call ``deliver(channel, message)`` for every message
        another process publishes on a channel this bridge is subscribed to.
        """

    def subscribe(channel: str) -> None:
        """This process has members in ``channel`` now: receive its messages."""

    def unsubscribe(channel: str) -> None:
        """This process has no member in ``channel`` any more."""

    def publish(channel: str, message: str) -> None:
        """Send ``message`` to the other processes. Must never block."""

    def stats() -> dict[str, Any]:
        """Counters of the bridge (published, dropped, ...), for monitoring."""

    def close() -> Deferred[None]:
        """Stop, and close every connection; the Deferred fires when they are closed."""


class Channels:
    """
    Named channels of connections (any ``ITransport``: SockJS sessions, or plain TCP
    connections, which get the message's UTF-8 bytes written).

    :param redis: a ``redis://[[user]:password@]host[:port][/db]`` URL: publish through
        Redis, so that every process using the same Redis server and database number
        shares the channels. ``None``: this process only.
    :param reactor: the reactor of the Redis connections (the global one if not given).
    :param bridge: another :class:`IChannelBridge` (instead of ``redis``).
    :param redisOptions: passed to :class:`txsockjs.redis.RedisBridge` (``queue_limit``,
        ``namespace``, ...).
    """

    def __init__(
        self,
        redis: str | None = None,
        *,
        reactor: IReactorTime | None = None,
        bridge: IChannelBridge | None = None,
        **redisOptions: Any,
    ) -> None:
        if redis is not None and bridge is not None:
            raise ValueError("Channels takes a Redis URL or a bridge, not both")
        if redisOptions and redis is None:
            raise TypeError(f"options without a Redis URL: {', '.join(sorted(redisOptions))}")
        if redis is not None:
            from .redis import RedisBridge

            bridge = RedisBridge(redis, reactor=reactor, **redisOptions)
        self._bridge = bridge
        self._started = False
        self._closed = False
        self._members: dict[str, set[ITransport]] = {}
        self._joined: dict[ITransport, set[str]] = {}
        #: Messages published here, and messages delivered from other processes.
        self.published = 0
        self.received = 0

    @property
    def bridge(self) -> IChannelBridge | None:
        """The bridge to other processes, if any."""
        return self._bridge

    def _startBridge(self) -> IChannelBridge | None:
        bridge = self._bridge
        if bridge is not None and not self._started and not self._closed:
            self._started = True
            bridge.start(self._deliverRemote)
        return bridge

    def start(self) -> None:
        """
        Connect the bridge now rather than at the first :meth:`join` or :meth:`publish`
        (``twistd sockjs --redis`` does, to report a wrong address at start-up).
        """
        self._startBridge()

    # -- membership ---------------------------------------------------------------------------

    def join(self, channel: str, transport: ITransport) -> None:
        """Add ``transport`` to ``channel`` (created when its first member joins)."""
        members = self._members.get(channel)
        if members is None:
            members = self._members[channel] = set()
            bridge = self._startBridge()
            if bridge is not None:
                bridge.subscribe(channel)
        members.add(transport)
        self._joined.setdefault(transport, set()).add(channel)

    def leave(self, channel: str, transport: ITransport) -> None:
        """Remove ``transport`` from ``channel``; nothing happens if it was not a member."""
        members = self._members.get(channel)
        if members is None or transport not in members:
            return
        members.discard(transport)
        joined = self._joined.get(transport)
        if joined is not None:
            joined.discard(channel)
            if not joined:
                del self._joined[transport]
        if not members:
            del self._members[channel]
            if self._bridge is not None and self._started:
                self._bridge.unsubscribe(channel)

    def leaveAll(self, transport: ITransport) -> None:
        """Remove ``transport`` from every channel (call it from ``connectionLost``)."""
        for channel in list(self._joined.get(transport, ())):
            self.leave(channel, transport)

    def members(self, channel: str) -> frozenset[ITransport]:
        """The transports in ``channel`` in this process."""
        return frozenset(self._members.get(channel, ()))

    def channelsOf(self, transport: ITransport) -> frozenset[str]:
        """The channels ``transport`` is in."""
        return frozenset(self._joined.get(transport, ()))

    @property
    def names(self) -> list[str]:
        """The channels that have members in this process, sorted."""
        return sorted(self._members)

    # -- messages -------------------------------------------------------------------------------

    def publish(self, channel: str, message: str) -> None:
        """
        Send ``message`` to every member of ``channel``: at once to the members in this
        process, and through the bridge to the members in the others. Never blocks.
        """
        if not isinstance(message, str):
            raise TypeError(f"publish() takes a str message, not {type(message).__name__}")
        self.published += 1
        self._deliver(channel, message)
        bridge = self._startBridge()
        if bridge is not None and not self._closed:
            bridge.publish(channel, message)

    def _deliverRemote(self, channel: str, message: str) -> None:
        self.received += 1
        self._deliver(channel, message)

    def _deliver(self, channel: str, message: str) -> None:
        members = self._members.get(channel)
        if not members:
            return
        live = _live(members)
        if len(live) != len(members):
            for gone in members.difference(live):
                self.leaveAll(gone)
        broadcast(live, message)

    # -- the rest ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters of this process's channels and of the bridge, for monitoring."""
        stats: dict[str, Any] = {
            "channels": len(self._members),
            "members": sum(len(members) for members in self._members.values()),
            "published": self.published,
            "received": self.received,
        }
        if self._bridge is not None:
            stats["bridge"] = self._bridge.stats()
        return stats

    def close(self) -> Deferred[None]:
        """Close the bridge; the members stay (in this process). Fires when closed."""
        if self._closed:
            return succeed(None)
        self._closed = True
        if self._bridge is not None and self._started:
            return self._bridge.close()
        return succeed(None)


def _live(members: Iterable[ITransport]) -> list[ITransport]:
    """The members whose SockJS session (if they are one) is not closed."""
    return [member for member in members if getattr(member, "state", None) != "closed"]
