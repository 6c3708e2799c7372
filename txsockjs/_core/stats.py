"""
The numbers a SockJS service keeps about itself, per transport: plain integers.

Sessions count into the :class:`TransportStats` of their transport with attribute
increments, nothing more, so that keeping them costs the hot path (one message in, one
message out) a few integer additions. Everything that would cost more (the bytes queued
for clients, the open sessions) is computed when someone asks: by
:func:`snapshot`, which :mod:`txsockjs.metrics` calls at each scrape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from twisted.internet.error import ConnectionAborted
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from .service import SessionService

# -- why a session closed: the ``reason`` of ``sockjs_sessions_closed_total`` ------------------

#: The application closed the session (``close``, ``end``, ``loseConnection``).
NORMAL = "normal"
#: The client closed the websocket with a closing handshake it started.
CLIENT_CLOSED = "client_closed"
#: The client dropped the connection the session was sending on.
INTERRUPTED = "interrupted"
#: No client request came back within ``disconnect_delay`` (a polling session).
TIMEOUT = "timeout"
#: The application raised (in ``connectionMade`` or while receiving a message) or wrote
#: bytes that are not UTF-8: closed with 1011 or 1007.
SERVER_ERROR = "server_error"
#: More than ``max_queued_bytes`` waited for a client that does not read: closed with 1008.
SEND_BUFFER_FULL = "send_buffer_full"
#: The service stopped or drained: closed with 1001.
SHUTDOWN = "shutdown"
#: The application aborted the session (``abortConnection``, ``stopProducing``).
ABORTED = "aborted"
#: A raw websocket client sent a binary message the protocol cannot take: closed with 1003.
UNSUPPORTED_DATA = "unsupported_data"
#: Closed by txsockjs with another code of its own (a policy, 1008, or a protocol error).
OTHER = "other"

#: Every close reason, in the order the metrics list them.
CLOSE_REASONS = (
    NORMAL,
    CLIENT_CLOSED,
    INTERRUPTED,
    TIMEOUT,
    SERVER_ERROR,
    SEND_BUFFER_FULL,
    SHUTDOWN,
    ABORTED,
    UNSUPPORTED_DATA,
    OTHER,
)

_BY_CODE = {
    1001: SHUTDOWN,
    1003: UNSUPPORTED_DATA,
    1007: SERVER_ERROR,
    1011: SERVER_ERROR,
}


def close_reason(frame: bytes, lost: Failure | None = None) -> str:
    """
    Why a session that sent the close frame ``frame`` (``c[code,"reason"]``) closed.

    :param lost: the failure its protocol's ``connectionLost`` got, when not a plain
        ``ConnectionDone``.
    """
    if lost is not None and lost.check(ConnectionAborted):
        return ABORTED
    try:
        code = int(frame[2 : frame.index(b",")])
    except ValueError:
        return OTHER
    if code == 1000 or 3000 <= code <= 4999:
        return NORMAL
    if code == 1008:
        return SEND_BUFFER_FULL if b"Send buffer full" in frame else OTHER
    return _BY_CODE.get(code, OTHER)


class TransportStats:
    """
    Counters of one transport of one service. Only ever incremented (``open`` goes down
    too); read by :func:`snapshot`.
    """

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "closed",
        "heartbeats",
        "liveness_timeouts",
        "messages_in",
        "messages_out",
        "open",
        "opened",
    )

    def __init__(self) -> None:
        #: Sessions whose protocol was connected.
        self.opened = 0
        #: Sessions connected and not yet closed.
        self.open = 0
        #: Sessions closed, by reason (see :data:`CLOSE_REASONS`).
        self.closed: dict[str, int] = dict.fromkeys(CLOSE_REASONS, 0)
        #: Messages delivered to the protocols, and their UTF-8 bytes (a binary message's
        #: bytes).
        self.messages_in = 0
        self.bytes_in = 0
        #: Messages sent to clients (taken from the queues for their connections; not
        #: those dropped), and their bytes: JSON strings for the SockJS transports, UTF-8
        #: (or the binary message) for the raw websocket; framing not included.
        self.messages_out = 0
        self.bytes_out = 0
        #: Heartbeats sent (a frame, or a ping on websockets).
        self.heartbeats = 0
        #: Websockets dropped because their client answered no ping.
        self.liveness_timeouts = 0

    def session_closed(self, reason: str) -> None:
        """Count one session closed for ``reason``."""
        self.open -= 1
        closed = self.closed
        closed[reason] = closed.get(reason, 0) + 1


def transport_stats(names: Iterable[str]) -> dict[str, TransportStats]:
    """Fresh counters for each of ``names``."""
    return {name: TransportStats() for name in names}


@dataclasses.dataclass(frozen=True)
class TransportSnapshot:
    """The numbers of one transport at one moment."""

    opened: int
    open: int
    closed: Mapping[str, int]
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    heartbeats: int
    liveness_timeouts: int
    #: Bytes waiting in the sessions' queues for their clients, right now.
    queued_bytes: int


@dataclasses.dataclass(frozen=True)
class ServiceSnapshot:
    """The numbers of one service at one moment."""

    transports: Mapping[str, TransportSnapshot]
    #: Requests refused and sessions closed by a cap, by reason.
    refusals: Mapping[str, int]


def snapshot(service: SessionService) -> ServiceSnapshot:
    """
    Read the numbers of ``service``: its counters, and the bytes queued for clients summed
    over its live sessions (the only part that costs in proportion to the sessions).
    """
    queued: dict[str, int] = {}
    for session in list(service._live):
        name = session._info.transport_name
        queued[name] = queued.get(name, 0) + session._queued_bytes
    transports = {}
    for name, stats in list(service.stats.items()):
        transports[name] = TransportSnapshot(
            opened=stats.opened,
            open=stats.open,
            closed=dict(stats.closed),
            messages_in=stats.messages_in,
            messages_out=stats.messages_out,
            bytes_in=stats.bytes_in,
            bytes_out=stats.bytes_out,
            heartbeats=stats.heartbeats,
            liveness_timeouts=stats.liveness_timeouts,
            queued_bytes=queued.get(name, 0),
        )
    refusals: Mapping[str, int] = getattr(service, "refusals", None) or {}
    return ServiceSnapshot(transports=transports, refusals=dict(refusals))
