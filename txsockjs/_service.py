"""
The sessions of one SockJS service: lookup by id, caps, one flusher, one timer structure.

Per service there is one ``callLater(0)`` for all sessions written to in a reactor turn, and
two timer wheels (heartbeats, expiry): nothing costs a timer per session or per message.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall, IProtocolFactory, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.web.iweb import IRequest

from ._info import connection_info
from ._options import SockJSOptions
from ._session import Session
from ._timers import TimerWheel

_log = Logger()
_LEVELS = {"error": LogLevel.error, "info": LogLevel.info, "debug": LogLevel.debug}


def _default_clock() -> IReactorTime:
    from twisted.internet import reactor

    return reactor


class SessionService:
    """
    Sessions of one SockJS service and the machinery they share.

    :param factory: builds one protocol per session.
    :param options: the service's options.
    :param clock: time source for every timer; the global reactor when ``None``.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        options: SockJSOptions,
        clock: IReactorTime | None = None,
    ):
        self.factory = factory
        self.options = options
        self.clock = clock if clock is not None else _default_clock()
        self._sessions: dict[bytes, Session] = {}
        self._live: set[Session] = set()
        self._dirty: list[Session] = []
        self._flush_call: IDelayedCall | None = None
        self._batching = 0
        self._started = False
        resolution = min(options.heartbeat_delay, options.disconnect_delay) / 20
        resolution = min(max(resolution, 0.005), 0.5)
        self.heartbeats: TimerWheel[Session] = TimerWheel(
            self.clock, resolution, Session.heartbeat
        )
        self.expiry: TimerWheel[Session] = TimerWheel(self.clock, resolution, Session.expire)

    # -- sessions -----------------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of sessions the service holds (open, closing, or replaying a close)."""
        return len(self._live.union(self._sessions.values()))

    def get(self, session_id: bytes) -> Session | None:
        """The session registered under ``session_id``, if any."""
        return self._sessions.get(session_id)

    def full(self) -> bool:
        """Whether ``max_sessions`` sessions are open, so a new one must be refused."""
        return len(self._live) >= self.options.max_sessions

    def open(
        self, request: IRequest, prefix: str, transport_name: str, session_id: bytes | None
    ) -> Session:
        """
        Make a session for ``request``; registered under ``session_id`` unless ``None``
        (websocket sessions are never looked up by id).

        The caller attaches a receiver, then calls :meth:`start`.
        """
        info = connection_info(
            request, self.options, prefix, transport_name, transport_name != "raw-websocket"
        )
        session = Session(self, info, session_id)
        if session_id is not None:
            self._sessions[session_id] = session
        self._live.add(session)
        return session

    def start(self, session: Session) -> None:
        """Build the session's protocol and connect it."""
        if not self._started:
            self._started = True
            self.factory.doStart()
        try:
            protocol = self.factory.buildProtocol(session.getPeer())
        except Exception:
            _log.failure("The protocol factory raised building a protocol for a session")
            protocol = None
        self.log("debug", f"session opened over {session.transportName}")
        session.start(protocol)

    def forget(self, session: Session) -> None:
        """Drop the session's registration: its id may start a new session."""
        key = session._key
        if key is not None and self._sessions.get(key) is session:
            del self._sessions[key]
        self._live.discard(session)
        self.heartbeats.cancel(session)
        self.expiry.cancel(session)

    def session_closed(self, session: Session) -> None:
        """The session's protocol is gone; its id stays to replay the close frame."""
        self._live.discard(session)
        self.log("debug", f"session closed over {session.transportName}")

    def expire_later(self, session: Session) -> None:
        """Start the ``disconnect_delay`` count for a session without a receiver."""
        if session._key is None:
            self.forget(session)
        else:
            self.expiry.schedule(session, self.options.disconnect_delay)

    # -- sending ------------------------------------------------------------------------------

    def mark_dirty(self, session: Session) -> None:
        """Flush ``session`` at the end of this batch or reactor turn, with every dirty one."""
        self._dirty.append(session)
        if self._flush_call is None and not self._batching:
            self._flush_call = self.clock.callLater(0, self._flush)

    def begin_batch(self) -> None:
        """
        A transport starts handing a read of client data to the protocols: what they write
        in answer waits for :meth:`end_batch`, with no reactor turn in between.
        """
        self._batching += 1

    def end_batch(self) -> None:
        """The read is handled: its answers leave now, one frame per session."""
        self._batching -= 1
        if not self._batching:
            self.flush()

    def flush(self) -> None:
        """Flush every dirty session now."""
        call, self._flush_call = self._flush_call, None
        if call is not None:
            call.cancel()
        while self._dirty:
            dirty, self._dirty = self._dirty, []
            for session in dirty:
                session.flush()

    def _flush(self) -> None:
        self._flush_call = None
        self.flush()

    # -- logging and shutdown -----------------------------------------------------------------

    def log(self, severity: str, message: str, **fields: Any) -> None:
        """
        Log through the ``log`` option's hook, and ``info`` and ``error`` lines through
        :mod:`twisted.logger` too. ``debug`` lines (a session opened or closed: one per
        session) go only to the hook, so that a busy server's log stays readable and cheap.
        """
        if severity != "debug":
            level = _LEVELS.get(severity, LogLevel.info)
            _log.emit(level, "{sockjs_message}", sockjs_message=message, **fields)
        hook = self.options.log
        if hook is not None:
            hook(severity, message)

    def stop(self) -> None:
        """Close every session, cancel every timer, and stop the factory."""
        for session in list(self._live) + list(self._sessions.values()):
            session.shutdown()
        self._sessions.clear()
        self._live.clear()
        self.heartbeats.stop()
        self.expiry.stop()
        if self._flush_call is not None:
            self._flush_call.cancel()
            self._flush_call = None
        self._dirty.clear()
        if self._started:
            self._started = False
            self.factory.doStop()
