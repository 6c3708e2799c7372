"""
Who may open and use a session, in one place for every transport: the origin policy
(``allowed_origins``), the ``authenticate`` hook, and the binding of a session to its
client's host (``bind_session_to_host``).

The HTTP transports and the websocket handshake ask here; the rules themselves are in
:mod:`txsockjs._policy.origin` (origins) and the hook the application gives.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request

from .._core import service as _service
from .._core.events import OBSERVER, peer_text
from .._core.info import client_address, connect_request, host_key
from .._web.responses import error
from ..auth import Refused

if TYPE_CHECKING:
    from .._core.service import SessionService
    from .._core.session import Session

_log = Logger(observer=OBSERVER)

#: The answer to a request from a page whose origin the policy refuses.
FOREIGN_ORIGIN = (403, "Origin not allowed.")
#: The answer to a request the ``authenticate`` hook refused.
FORBIDDEN = (403, "Forbidden.")
#: The answer when the ``authenticate`` hook raised something else than ``Refused``.
HOOK_FAILED = (500, "Server error.")


def refuse_origin(
    request: Request, service: SessionService, websocket: bool = False, count: bool = True
) -> bytes:
    """
    The 403 answer to ``request`` if its origin is refused by ``allowed_origins``, else
    ``b""`` (the request may go on). A refusal is counted (``foreign_origin``) and logged.

    :param count: ``False`` for a ``HEAD``, which only asks: nothing is counted or logged.
    """
    if service.options.allowed_origins.allows_request(request, websocket):
        return b""
    if count:
        service.refused(
            _service.FOREIGN_ORIGIN,
            "refusing a request from a page of a foreign origin",
            request=request,
            sockjs_origin=_origin_text(request),
        )
    return error(request, *FOREIGN_ORIGIN)


def _origin_text(request: Request) -> str:
    """The request's ``Origin`` header, for the log: printable, at most 200 characters."""
    origin = (request.getHeader(b"origin") or b"").decode("latin-1")[:201]
    origin = "".join(c if c.isprintable() else "?" for c in origin)
    return origin if len(origin) <= 200 else origin[:200] + "..."


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of the ``authenticate`` hook for one request."""

    #: What the hook returned, when it admitted the request.
    principal: Any = None
    #: 0 when admitted, else the status of the answer (403 refused, 500 the hook failed).
    status: int = 0
    message: str = ""
    #: Why the hook refused (``Refused.reason``), for the log only.
    reason: str = ""
    #: The hook raised something else than ``Refused`` (the answer is 500).
    crashed: bool = False

    @property
    def admitted(self) -> bool:
        return self.status == 0


_ADMITTED = Verdict()
_REFUSED = Verdict(status=FORBIDDEN[0], message=FORBIDDEN[1])


def _judge(result: Any) -> Verdict:
    return _REFUSED if result is None else Verdict(principal=result)


def admit(
    request: Request, service: SessionService, prefix: str, transport_name: str
) -> Verdict | Deferred[Verdict]:
    """
    Ask the ``authenticate`` hook whether ``request`` may open a session: its verdict, or a
    Deferred of it when the hook answers later (it returned a Deferred or a coroutine).
    Without a hook every request is admitted, with the principal ``None``.
    """
    hook = service.options.authenticate
    if hook is None:
        return _ADMITTED
    view = connect_request(request, service.options, prefix, transport_name)
    try:
        result = hook(view)
    except Exception:
        return _failed(Failure(), service)
    if inspect.iscoroutine(result):
        result = Deferred.fromCoroutine(result)
    if isinstance(result, Deferred):
        return result.addCallbacks(_judge, _failed, errbackArgs=(service,))
    return _judge(result)


def _failed(failure: Failure, service: SessionService) -> Verdict:
    if isinstance(failure.value, Refused):
        return Verdict(status=FORBIDDEN[0], message=FORBIDDEN[1], reason=failure.value.reason)
    if failure.check(CancelledError):
        return _REFUSED  # the client left; nobody sees the answer
    _log.failure("The authenticate hook raised; the session is refused", failure)
    hook = service.options.log
    if hook is not None:
        hook("error", "the authenticate hook raised; the session is refused")
    return Verdict(status=HOOK_FAILED[0], message=HOOK_FAILED[1], crashed=True)


def refuse(request: Request, service: SessionService, verdict: Verdict) -> bytes:
    """
    The error answer to a request the hook did not admit (status and headers set), counted
    as ``auth_refused`` (logged at debug) or, when the hook raised, as ``auth_error``
    (the error itself was logged when it was caught).
    """
    if verdict.crashed:
        service.refusals[_service.AUTH_ERROR] += 1
    else:
        because = f": {verdict.reason}" if verdict.reason else ""
        service.refused(
            _service.AUTH_REFUSED,
            "refusing a session: the authenticate hook refused it" + because,
            request=request,
        )
    return error(request, verdict.status, verdict.message)


def when_decided(
    request: Request,
    pending: Deferred[Verdict],
    proceed: Callable[[Verdict], None],
) -> None:
    """
    Call ``proceed`` with the verdict once the hook has decided, if the client is still
    there; if it leaves first, the hook's Deferred is cancelled and nothing else happens.
    """
    gone = False

    def lost(reason: Failure) -> None:
        nonlocal gone
        gone = True
        pending.cancel()

    request.notifyFinish().addErrback(lost)

    def decided(verdict: Verdict) -> None:
        if not (gone or request.finished):
            proceed(verdict)

    def crashed(failure: Failure) -> None:
        _log.failure("txsockjs failed to go on after the authenticate hook", failure)
        if not (gone or request.finished):
            answer_late(request, error(request, *HOOK_FAILED))

    pending.addCallback(decided).addErrback(crashed)


def refuse_late(request: Request, service: SessionService) -> bytes:
    """
    After the hook admitted a new session late: the 503 answer if the service may no longer
    open one (it started draining, or ``max_sessions`` were reached meanwhile), else ``b""``.
    """
    if service.draining:
        service.refused(_service.DRAINING, "refusing a new session: draining", request=request)
        return error(request, 503, "Server shutting down.")
    if service.full():
        service.refused(
            _service.MAX_SESSIONS,
            "refusing a new session: max_sessions reached meanwhile",
            request=request,
        )
        return error(request, 503, "Too many sessions.")
    return b""


def answer_late(request: Request, body: bytes) -> None:
    """
    Send an answer whose status and headers are set (by :func:`error`, :func:`refuse`) after
    the resource returned ``NOT_DONE_YET``.
    """
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.write(body)
    request.finish()


def same_host(session: Session, request: Request, service: SessionService) -> bool:
    """
    Whether ``request`` may use ``session``: always, unless ``bind_session_to_host`` is on
    and the request comes from another client host than the one that opened the session
    (hosts after ``trusted_proxies`` resolution; ports are never compared). A refusal is
    counted (``foreign_host``) and logged, with the session and the request's client.
    """
    options = service.options
    if not options.bind_session_to_host:
        return True
    client = client_address(request, options)
    if host_key(session.getPeer()) == host_key(client):
        return True
    service.refused(
        _service.FOREIGN_HOST,
        "refusing a request for a session opened from another host",
        session,
        sockjs_client=peer_text(client),
    )
    return False
