"""
Authentication of SockJS sessions.

Two ways, which may be combined:

* The ``authenticate`` option: a hook called with a read-only :class:`ConnectRequest` (path,
  query, every header with cookies, the client's address) for each request that would open
  a session. It returns a principal, or ``None`` (or raises :class:`Refused`) to refuse the
  session with 403, or a Deferred (or coroutine) of either. The principal is then
  ``transport.principal``.
* :class:`FirstMessageAuth`: for clients that cannot send headers or cookies (sockjs-client
  cannot set headers), the first message of the session is a token, checked by a callable;
  the wrapped protocol is connected only once the token is accepted.

See ``doc/security.rst``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._core.events import OBSERVER
from ._core.info import ConnectRequest

__all__ = [
    "AUTH_TIMEOUT",
    "UNAUTHORIZED",
    "ConnectRequest",
    "FirstMessageAuth",
    "Refused",
]

_log = Logger(observer=OBSERVER)

#: Close code and reason of a session whose token :class:`FirstMessageAuth` refused (or
#: whose check raised; the error is logged).
UNAUTHORIZED = (4401, "Unauthorized")
#: Close code and reason of a session that sent no token, or whose check did not decide,
#: within :class:`FirstMessageAuth`'s ``timeout``.
AUTH_TIMEOUT = (4408, "Authentication timeout")
#: Close code and reason when the wrapped factory's ``buildProtocol`` returns ``None``.
FACTORY_REFUSED = (3003, "Connection refused")


class Refused(Exception):
    """
    Raised by an ``authenticate`` hook (or a :class:`FirstMessageAuth` check) to refuse, as
    returning ``None`` does. The client gets 403 (the websocket handshake is refused with
    403), or the close code :data:`UNAUTHORIZED` from :class:`FirstMessageAuth`.

    :param reason: why, for the server's log (at debug level); never sent to the client.
    """

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason


#: A :class:`FirstMessageAuth` check: given the token (the first message, as text), returns
#: a principal, or ``None`` (or raises :class:`Refused`) to refuse, or a Deferred or
#: coroutine of either.
TokenCheck = Callable[[str], Any]

_WAITING = "waiting"
_CHECKING = "checking"
_CONNECTED = "connected"
_CLOSED = "closed"


class FirstMessageAuth(Factory):
    """
    Wrap a protocol factory so that the first message of each session is an authentication
    token, checked before the wrapped protocol exists.

    The session's first message is given to ``check`` as text. A principal (anything but
    ``None``) accepts it: ``transport.principal`` is set to it, the wrapped factory builds
    the protocol, which is connected, and then gets the messages that followed the token (they
    wait while the check runs: reading from the client is paused). ``None``, or
    :class:`Refused`, or an exception (logged) closes the session with :data:`UNAUTHORIZED`;
    no token or no answer within ``timeout`` seconds closes it with :data:`AUTH_TIMEOUT`.
    The token itself is never delivered to the wrapped protocol.

    Meant for SockJS sessions (their messages are whole): a page gets a token from its own
    site (over an authenticated request) and sends it first with ``sock.send(token)`` in
    ``onopen``; the token then never appears in a URL or a log line.

    :param factory: the protocol factory of authenticated sessions.
    :param check: ``check(token) -> principal``, may return a Deferred or coroutine.
    :param timeout: seconds from the session's start for the token and the check.
    :param clock: time source of the timeout (``task.Clock`` in tests); the global reactor
        when omitted.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        check: TokenCheck,
        *,
        timeout: float = 10.0,
        clock: IReactorTime | None = None,
    ):
        if not callable(check):
            raise TypeError(f"check must be a callable(token) -> principal, not {check!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.wrappedFactory = factory
        self.check = check
        self.timeout = float(timeout)
        self._clock = clock

    @property
    def clock(self) -> IReactorTime:
        """The time source of the timeouts."""
        if self._clock is None:
            from twisted.internet import reactor

            self._clock = cast(IReactorTime, reactor)
        assert self._clock is not None
        return self._clock

    def startFactory(self) -> None:
        self.wrappedFactory.doStart()

    def stopFactory(self) -> None:
        self.wrappedFactory.doStop()

    def buildProtocol(self, addr: IAddress | None) -> _FirstMessageProtocol:
        return _FirstMessageProtocol(self)

    def logPrefix(self) -> str:
        wrapped = self.wrappedFactory
        name = getattr(wrapped, "logPrefix", None)
        inner = name() if callable(name) else type(wrapped).__name__
        return f"FirstMessageAuth({inner})"


class _FirstMessageProtocol(Protocol):
    """Waits for the token, then stands between the session and the wrapped protocol."""

    def __init__(self, factory: FirstMessageAuth):
        self._auth = factory
        self._state = _WAITING
        self._wrapped: IProtocol | None = None
        self._timer: IDelayedCall | None = None
        self._pending: Deferred[Any] | None = None
        #: Messages that arrived while checking from a transport that did not pause.
        self._early: list[bytes] = []

    def connectionMade(self) -> None:
        self._timer = self._auth.clock.callLater(self._auth.timeout, self._timedOut)

    def dataReceived(self, data: bytes) -> None:
        if self._state == _CONNECTED:
            assert self._wrapped is not None
            self._wrapped.dataReceived(data)
        elif self._state == _WAITING:
            self._state = _CHECKING
            transport: Any = self.transport
            transport.pauseProducing()
            self._check(data)
        elif self._state == _CHECKING:
            self._early.append(data)

    def _check(self, data: bytes) -> None:
        try:
            token = data.decode("utf-8")
            result = self._auth.check(token)
        except Exception:
            self._decided(Failure())
            return
        if inspect.iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            self._pending = result
            result.addBoth(self._decided)
        else:
            self._decided(result)

    def _decided(self, result: Any) -> None:
        self._pending = None
        if self._state != _CHECKING:
            return  # closed, or timed out, meanwhile
        if isinstance(result, Failure):
            if not result.check(Refused, CancelledError):
                _log.failure("The FirstMessageAuth check raised; the session is refused", result)
            self._close(UNAUTHORIZED)
        elif result is None:
            self._close(UNAUTHORIZED)
        else:
            self._accept(result)

    def _accept(self, principal: Any) -> None:
        self._cancel_timer()
        transport: Any = self.transport
        wrapped = self._auth.wrappedFactory.buildProtocol(transport.getPeer())
        if wrapped is None:
            self._close(FACTORY_REFUSED)
            return
        transport.principal = principal
        self._state = _CONNECTED
        self._wrapped = wrapped
        receiver = getattr(wrapped, "binaryMessageReceived", None)
        if receiver is not None:
            # The session asks its protocol for this method (raw websocket binary messages).
            self.binaryMessageReceived = receiver
        wrapped.makeConnection(transport)
        early, self._early = self._early, []
        for message in early:
            if self._state != _CONNECTED:
                break
            wrapped.dataReceived(message)
        if self._state == _CONNECTED:
            transport.resumeProducing()

    def _timedOut(self) -> None:
        self._timer = None
        if self._state in (_WAITING, _CHECKING):
            pending = self._pending
            self._close(AUTH_TIMEOUT)
            if pending is not None:
                pending.cancel()

    def _close(self, code: tuple[int, str]) -> None:
        self._cancel_timer()
        self._state = _CLOSED
        self._early = []
        transport: Any = self.transport
        transport.close(*code)

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._cancel_timer()
        state, self._state = self._state, _CLOSED
        self._early = []
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
        if state == _CONNECTED and self._wrapped is not None:
            self._wrapped.connectionLost(reason)
