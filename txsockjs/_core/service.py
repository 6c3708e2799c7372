"""
The sessions of one SockJS service: lookup by id, caps, one flusher, one timer structure,
and the drain that stops it.

Per service there is one ``callLater(0)`` for all sessions written to in a reactor turn, and
two timer wheels (heartbeats, expiry): nothing costs a timer per session or per message.
The rate of new sessions per client address is kept without any timer either (see
:mod:`txsockjs._policy.ratelimit`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IProtocolFactory,
    IReactorFDSet,
    IReactorTime,
)
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from .._policy.ratelimit import RateLimiter, address_key
from .._web.responses import error
from . import events as _events
from .info import client_address, connection_info
from .options import TRANSPORT_NAMES, SockJSOptions
from .session import CLOSED_STATE, Session
from .stats import NORMAL, TransportStats, transport_stats
from .timers import TimerWheel

_log = Logger()
_LEVELS = {"error": LogLevel.error, "info": LogLevel.info, "debug": LogLevel.debug}

# -- the keys of SessionService.refusals: what a cap refused or closed ---------------------------

#: A new session while the service drains: 503 ``Server shutting down.``
DRAINING = "draining"
#: A new session from a client address over ``new_sessions_per_second``: 429
#: ``Too many new sessions.``, with ``Retry-After``.
NEW_SESSIONS_RATE = "new_sessions_rate"
#: A new session while ``max_sessions`` are open: 503 ``Too many sessions.``
MAX_SESSIONS = "max_sessions"
#: A send while ``max_pending_sends`` sends of the session wait: 503
#: ``Too many sends waiting.``
MAX_PENDING_SENDS = "max_pending_sends"
#: A send while the messages held for the session exceed ``max_queued_bytes``: 503
#: ``Too many messages waiting.``
MAX_QUEUED_BYTES = "max_queued_bytes"
#: A session closed because its client did not come back within ``first_poll_deadline``
#: of its first response (its protocol's ``connectionLost`` gets ``ConnectionLost``).
FIRST_POLL_DEADLINE = "first_poll_deadline"
#: A request from a page of an origin ``allowed_origins`` refuses: 403
#: ``Origin not allowed.`` (the websocket handshake too).
FOREIGN_ORIGIN = "foreign_origin"
#: A new session the ``authenticate`` hook refused (returned ``None`` or raised
#: :class:`txsockjs.auth.Refused`): 403 ``Forbidden.``
AUTH_REFUSED = "auth_refused"
#: A new session refused because the ``authenticate`` hook raised something else: 500
#: ``Server error.`` (the traceback is logged as an error).
AUTH_ERROR = "auth_error"
#: A request for a session from another client host than the one that opened it, with
#: ``bind_session_to_host``: 404, as for a session that does not exist.
FOREIGN_HOST = "foreign_host"
#: Every key :attr:`SessionService.refusals` may hold.
REFUSAL_REASONS = (
    DRAINING,
    NEW_SESSIONS_RATE,
    MAX_SESSIONS,
    MAX_PENDING_SENDS,
    MAX_QUEUED_BYTES,
    FIRST_POLL_DEADLINE,
    FOREIGN_ORIGIN,
    AUTH_REFUSED,
    AUTH_ERROR,
    FOREIGN_HOST,
)

#: The close frame every session gets when the service stops.
SHUTTING_DOWN = (1001, "Server shutting down")
#: Seconds between two looks at the reactor's pending output once a drain has closed every
#: session (see :meth:`SessionService.drain`).
_FLUSH_POLL = 0.02


def _default_clock() -> IReactorTime:
    from twisted.internet import reactor

    return reactor


class SessionService(Service):
    """
    Sessions of one SockJS service and the machinery they share.

    It is an :class:`~twisted.application.service.IService`: stopping it drains it (see
    :meth:`drain`), so ``resource.service.setServiceParent(application)`` gives a
    twistd application a graceful stop.

    :param factory: builds one protocol per session.
    :param options: the service's options.
    :param clock: time source for every timer; the global reactor when ``None``.
    """

    #: What the caps, the origin policy, the ``authenticate`` hook and the binding of
    #: sessions to hosts refused (requests) or closed (sessions), by reason: the keys are
    #: in :data:`REFUSAL_REASONS`.
    refusals: Counter[str]

    def __init__(
        self,
        factory: IProtocolFactory,
        options: SockJSOptions,
        clock: IReactorTime | None = None,
    ):
        self.factory = factory
        self.options = options
        self.clock = clock if clock is not None else _default_clock()
        #: Counters of each transport (see :mod:`txsockjs._core.stats`): read, never reset.
        self.stats: dict[str, TransportStats] = transport_stats(
            name for name in sorted(TRANSPORT_NAMES) if options.enabled(name)
        )
        self._sessions: dict[bytes, Session] = {}
        self._live: set[Session] = set()
        self._dirty: list[Session] = []
        self._flush_call: IDelayedCall | None = None
        self._batching = 0
        self._started = False
        self.refusals = Counter()
        #: Sessions whose client has not come back since its first receiving request:
        #: when that one ends they expire after ``first_poll_deadline``.
        self._unreturned: set[Session] = set()
        #: Sessions expiring after ``first_poll_deadline`` rather than ``disconnect_delay``.
        self._short_expiry: set[Session] = set()
        self._first_poll_deadline = min(options.first_poll_deadline, options.disconnect_delay)
        self._new_sessions: RateLimiter | None = None
        if options.new_sessions_per_second > 0:
            self._new_sessions = RateLimiter(
                self.clock,
                options.new_sessions_per_second,
                options.new_sessions_burst,
                options.new_sessions_tracked_addresses,
            )
        #: Send requests of each session waiting for their messages to be delivered.
        self._pending_sends: dict[Session, int] = {}
        #: New sessions are refused: the service drains, or has stopped.
        self.draining = False
        self._drain_waiters: list[Deferred[None]] = []
        self._drain_deadline: IDelayedCall | None = None
        self._drain_poll: IDelayedCall | None = None
        self._closing_all = False
        resolution = min(options.heartbeat_delay, options.disconnect_delay) / 20
        resolution = min(max(resolution, 0.005), 0.5)
        # A heartbeat may come up to a slot early, never late by the rounding: the first of
        # a session counts from its open, when the reactor is often busy opening others.
        self.heartbeats: TimerWheel[Session] = TimerWheel(
            self.clock, resolution, Session.heartbeat, early=True, period=options.heartbeat_delay
        )
        self.expiry: TimerWheel[Session] = TimerWheel(self.clock, resolution, self._expire)

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

    # -- caps -----------------------------------------------------------------------------------

    def refuse_new(self, request: IRequest, opening: bool = True) -> bytes | None:
        """
        Whether ``request``, which would open a session, is refused, and how: ``None`` when
        it may open one, else the body of the error answer (status and headers are set).

        Refused, in this order: while the service drains (503), beyond the client address's
        ``new_sessions_per_second`` (429, ``Retry-After``), when ``max_sessions`` are open
        (503). Each refusal is counted in :attr:`refusals`.

        :param opening: the request opens the session if admitted; ``False`` (a ``HEAD``)
            only asks: no token is taken and nothing is counted or logged.
        """
        retry_after = 0.0
        if self.draining:
            reason, status, text = DRAINING, 503, "Server shutting down."
        else:
            limiter = self._new_sessions
            if limiter is not None:
                key = address_key(client_address(request, self.options))
                if key is not None:
                    retry_after = limiter.take(key, consume=opening)
            if retry_after:
                reason, status, text = NEW_SESSIONS_RATE, 429, "Too many new sessions."
            elif self.full():
                reason, status, text = MAX_SESSIONS, 503, "Too many sessions."
            else:
                return None
        if opening:
            self.refused(reason, f"refusing a new session: {reason}", request=request)
        if retry_after:
            request.setHeader(b"Retry-After", b"%d" % max(1, math.ceil(retry_after)))
        return error(request, status, text)

    def refuse_send(self, session: Session) -> str | None:
        """
        Whether a send request to ``session`` is refused (503), and why: ``None`` when it
        may go on, else the text of the answer. Counted in :attr:`refusals`.
        """
        refusal = self._send_refusal(session)
        if refusal is None:
            return None
        reason, text = refusal
        self.refused(reason, f"refusing a send: {reason}", session)
        return text

    def send_refusable(self, session: Session) -> bool:
        """Whether :meth:`refuse_send` would refuse a send to ``session``; nothing counted."""
        return self._send_refusal(session) is not None

    def _send_refusal(self, session: Session) -> tuple[str, str] | None:
        if self._pending_sends.get(session, 0) >= self.options.max_pending_sends:
            return MAX_PENDING_SENDS, "Too many sends waiting."
        if session.inbox_full():
            # The client sends without reading the answers: its earlier sends still wait.
            return MAX_QUEUED_BYTES, "Too many messages waiting."
        return None

    def send_waits(self, session: Session, waiting: Deferred[None]) -> None:
        """
        A send request to ``session`` waits until ``waiting`` fires (its messages are
        delivered, or the session is gone): it counts toward ``max_pending_sends``.
        """
        pending = self._pending_sends
        pending[session] = pending.get(session, 0) + 1

        def done(result: object) -> object:
            left = pending.get(session, 0) - 1
            if left > 0:
                pending[session] = left
            else:
                pending.pop(session, None)
            return result

        waiting.addBoth(done)

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
            self._unreturned.add(session)
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
            self.event(_events.FACTORY_ERROR, session, Failure())
            protocol = None
        else:
            if protocol is None:
                self.event(_events.SESSION_REFUSED, session)
        if protocol is not None:
            stats = session._stats
            stats.opened += 1
            stats.open += 1
            self.event(_events.SESSION_OPENED, session)
        session.start(protocol)

    def forget(self, session: Session) -> None:
        """Drop the session's registration: its id may start a new session."""
        key = session._key
        if key is not None and self._sessions.get(key) is session:
            del self._sessions[key]
        self._live.discard(session)
        self._unreturned.discard(session)
        self._short_expiry.discard(session)
        self.heartbeats.cancel(session)
        self.expiry.cancel(session)
        if self._drain_waiters:
            self._drained_yet()

    def session_closed(
        self, session: Session, reason: str = NORMAL, connected: bool = True
    ) -> None:
        """
        The session's protocol is gone; its id stays to replay the close frame.

        :param reason: why (see :data:`txsockjs._core.stats.CLOSE_REASONS`).
        :param connected: a protocol was connected (else nothing is counted or logged).
        """
        self._live.discard(session)
        if connected:
            session._stats.session_closed(reason)
            self.event(_events.SESSION_CLOSED, session, sockjs_reason=reason)
        if self._drain_waiters:
            self._drained_yet()

    def expire_later(self, session: Session) -> None:
        """
        Start the ``disconnect_delay`` count for a session without a receiver; the shorter
        ``first_poll_deadline`` when the receiver that just ended was the session's first.
        """
        if session._key is None:
            self.forget(session)
        elif session in self._unreturned:
            self._unreturned.discard(session)
            self._short_expiry.add(session)
            self.expiry.schedule(session, self._first_poll_deadline)
        else:
            self._short_expiry.discard(session)
            self.expiry.schedule(session, self.options.disconnect_delay)

    def _expire(self, session: Session) -> None:
        """The expiry wheel's callback: count a session closed by ``first_poll_deadline``."""
        if session in self._short_expiry:
            self._short_expiry.discard(session)
            if session.state != CLOSED_STATE:
                self.refused(
                    FIRST_POLL_DEADLINE,
                    "closing a session whose client did not come back after its first response",
                    session,
                )
        session.expire()

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

    def receive_batched(
        self, session: Session, messages: Sequence[str | bytes]
    ) -> Deferred[None] | None:
        """
        Deliver the messages of one send to ``session`` in a batch: what the protocols write
        in answer leaves when they are delivered. Returns what :meth:`Session.receive` does.
        """
        self.begin_batch()
        try:
            return session.receive(messages)
        finally:
            self.end_batch()

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

    # -- logging, drain and shutdown ------------------------------------------------------------

    def stats_for(self, transport_name: str) -> TransportStats:
        """The counters of one transport."""
        stats = self.stats.get(transport_name)
        if stats is None:
            stats = self.stats[transport_name] = TransportStats()
        return stats

    def log(
        self,
        severity: str,
        message: str,
        session: Session | None = None,
        request: IRequest | None = None,
        **fields: Any,
    ) -> None:
        """
        Log ``message`` once, as one :mod:`twisted.logger` event at ``severity``
        (``"debug"``, ``"info"`` or ``"error"``), which the ``log`` option's hook gets too.

        :param session: the session it is about: the event gets its context fields.
        :param request: the request it is about (when no session): the client's address.
        :param fields: more fields, named ``sockjs_...``; one named ``sockjs_refusal`` makes
            it a ``refused`` event.
        """
        hook = self.options.log
        if _events.wanted(severity, hook):
            context = self._context(session, request)
            _events.emit_message(severity, message, hook, **context, **fields)

    def refused(
        self,
        reason: str,
        message: str,
        session: Session | None = None,
        request: IRequest | None = None,
        **fields: Any,
    ) -> None:
        """
        Count one refusal for ``reason`` (see :data:`REFUSAL_REASONS`) in :attr:`refusals`
        and log it once: a ``refused`` event at debug severity, its ``sockjs_refusal``
        field the reason, about ``session`` or ``request`` if given.
        """
        self.refusals[reason] += 1
        self.log("debug", message, session, request, sockjs_refusal=reason, **fields)

    def event(
        self,
        kind: _events.Event,
        session: Session | None = None,
        failure: Failure | None = None,
        request: IRequest | None = None,
        **fields: Any,
    ) -> None:
        """
        Log one occurrence of ``kind`` (see :mod:`txsockjs._core.events`), about ``session`` or
        ``request`` if given, once through :mod:`twisted.logger` and the ``log`` hook.
        """
        hook = self.options.log
        if _events.wanted(kind.severity, hook):
            context = self._context(session, request)
            _events.emit(kind, hook, failure, **context, **fields)

    def _context(self, session: Session | None, request: IRequest | None) -> dict[str, str]:
        if session is not None:
            return _events.session_context(session)
        if request is not None:
            return {"sockjs_peer": _events.peer_text(client_address(request, self.options))}
        return {}

    def protocol_error(self, session: Session, method: str) -> None:
        """
        The protocol of ``session`` raised in ``method``: log it once, with its traceback.
        Call it inside the ``except`` block.
        """
        self.event(_events.PROTOCOL_ERROR, session, Failure(), sockjs_method=method)

    def liveness_timeout(self, session: Session) -> None:
        """A websocket session's client answered no ping: count it and log it."""
        session._stats.liveness_timeouts += 1
        self.event(_events.LIVENESS_TIMEOUT, session)

    def startService(self) -> None:
        """``IService``: new sessions are welcome (again, after a drain)."""
        super().startService()  # type: ignore[no-untyped-call]
        self.draining = False

    def stopService(self) -> Deferred[None]:
        """``IService``: :meth:`drain` within ``drain_timeout``."""
        super().stopService()  # type: ignore[no-untyped-call]
        return self.drain()

    def drain(self, timeout: float | None = None) -> Deferred[None]:
        """
        Stop gracefully: refuse new sessions (503), send every session what is queued for
        it and then the close frame ``c[1001,"Server shutting down"]``, and fire once every
        session is closed and what was written for them has left the process, or at the
        deadline, whichever comes first; the service is then stopped as :meth:`stop` does
        (sessions still open at the deadline are closed at once).

        A session whose client is between two polls is closed by its next poll (its queued
        messages first, then the close frame on the poll after), or when it expires.

        :param timeout: seconds until the deadline; ``drain_timeout`` when ``None``.
        :return: a Deferred that fires with ``None``; calling again while a drain is under
            way returns another Deferred for the same drain.
        """
        waiter: Deferred[None] = Deferred()
        if self._drain_waiters:
            self._drain_waiters.append(waiter)
            return waiter
        self.draining = True
        self._drain_waiters.append(waiter)
        if timeout is None:
            timeout = self.options.drain_timeout
        self._drain_deadline = self.clock.callLater(timeout, self._drain_timed_out)
        live = list(self._live)
        if not live:
            self._finish_drain()
            return waiter
        self.log("info", f"draining {len(live)} sessions")
        self._closing_all = True
        try:
            for session in live:
                session.close_with_code(*SHUTTING_DOWN)
        finally:
            self._closing_all = False
        self._drained_yet()
        return waiter

    def _drained_yet(self) -> None:
        """During a drain: once no session is left open, wait for the output to leave."""
        if self._closing_all or self._live or self._drain_poll is not None:
            return
        self._output_left()

    def _output_left(self) -> None:
        """
        Finish the drain once the reactor has no pending output: the last frames written
        to the sessions' connections must not be dropped by a reactor shutdown that
        follows. A clock that is not a reactor (``task.Clock``) has no output to wait for.
        """
        self._drain_poll = None
        if IReactorFDSet.providedBy(self.clock) and self.clock.getWriters():
            self._drain_poll = self.clock.callLater(_FLUSH_POLL, self._output_left)
            return
        self._finish_drain()

    def _drain_timed_out(self) -> None:
        self._drain_deadline = None
        open_sessions = len(self._live)
        if open_sessions:
            self.log("info", f"drain deadline: closing {open_sessions} sessions at once")
        self._finish_drain()

    def _finish_drain(self) -> None:
        self.stop()

    def stop(self) -> None:
        """
        Close every session at once (queued messages are dropped), cancel every timer, and
        stop the factory; a drain under way is over.
        """
        waiters, self._drain_waiters = self._drain_waiters, []
        for call in (self._drain_deadline, self._drain_poll):
            if call is not None and call.active():
                call.cancel()
        self._drain_deadline = self._drain_poll = None
        for session in list(self._live) + list(self._sessions.values()):
            session.shutdown()
        self._sessions.clear()
        self._live.clear()
        self._unreturned.clear()
        self._short_expiry.clear()
        self._pending_sends.clear()
        self.heartbeats.stop()
        self.expiry.stop()
        if self._flush_call is not None:
            self._flush_call.cancel()
            self._flush_call = None
        self._dirty.clear()
        if self._started:
            self._started = False
            self.factory.doStop()
        for waiter in waiters:
            waiter.callback(None)
