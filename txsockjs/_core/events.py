"""
What txsockjs logs: one :mod:`twisted.logger` event per occurrence, each with a stable name
and stable fields, also handed (as one line) to the ``log`` option's hook.

Every event carries ``sockjs_event`` (its name, see :data:`EVENTS`) and, when it concerns a
session or a request, ``sockjs_session`` (a short hash of the session id, never the id
itself: whoever knows an id can post into its session), ``sockjs_transport`` and
``sockjs_peer`` (the client's address after ``trusted_proxies``). Its text is the name, then
``key=value`` for each of those fields, then what else the event says::

    session_closed session=5f0c9a1e transport=xhr-streaming peer=10.1.2.3:50412 reason=timeout
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogPublisher,
)
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from .session import Session

#: Every txsockjs event is emitted under this namespace (filter on it).
NAMESPACE = "txsockjs"

#: The ``log`` hook's severities, as :mod:`twisted.logger` levels.
LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "error": LogLevel.error}

#: Which events of txsockjs's loggers reach :mod:`twisted.logger`'s observers: every one
#: unless :func:`set_log_level` raised the level of the ``txsockjs`` namespace.
LOG_FILTER = LogLevelFilterPredicate(defaultLogLevel=LogLevel.debug)
#: The observer of every txsockjs ``Logger``: the global publisher, behind
#: :data:`LOG_FILTER`.
OBSERVER = FilteringLogObserver(globalLogPublisher, [LOG_FILTER])

_log = Logger(namespace=NAMESPACE, observer=OBSERVER)

#: The severities :func:`emit` does not send to :mod:`twisted.logger` (it does not even
#: make their event): those below the level :func:`set_log_level` set.
_unlogged: frozenset[str] = frozenset()


def set_log_level(severity: str) -> None:
    """
    Log the txsockjs events (the ``txsockjs`` namespace) at ``severity`` and above only:
    ``"debug"`` (every event, the default), ``"info"`` or ``"error"``. Those below are
    dropped before an event is made for them; the ``log`` option's hook still gets every
    one. ``twistd sockjs --log-level`` calls it.
    """
    global _unlogged
    level = LEVELS.get(severity)
    if level is None:
        raise ValueError(f"log level {severity!r}: one of {', '.join(LEVELS)}")
    LOG_FILTER.setLogLevelForNamespace(NAMESPACE, level)
    order = list(LEVELS)
    _unlogged = frozenset(order[: order.index(severity)])


def wanted(severity: str, hook: Callable[[str, str], None] | None) -> bool:
    """
    Whether an event at ``severity`` goes anywhere: to :mod:`twisted.logger` (it is not
    below the level :func:`set_log_level` set) or to ``hook``. When not, its caller need not
    even gather its fields.
    """
    return hook is not None or severity not in _unlogged


def log_level() -> str:
    """The lowest severity of the txsockjs events logged (see :func:`set_log_level`)."""
    return next(name for name in LEVELS if name not in _unlogged)


#: A per-process key for the session hashes, so that a log gives no way to test guesses of
#: a session id.
_HASH_KEY = secrets.token_bytes(16)


@dataclasses.dataclass(frozen=True)
class Event:
    """One kind of event: its stable name, its severity and its text."""

    name: str
    #: ``"debug"``, ``"info"`` or ``"error"``: the ``log`` hook's severities.
    severity: str
    #: What is said after the name and the fields (may refer to fields); may be empty.
    text: str = ""


#: A session's protocol was connected.
SESSION_OPENED = Event("session_opened", "debug")
#: A session's protocol was told ``connectionLost``; ``sockjs_reason`` says why (see
#: :data:`txsockjs._core.stats.CLOSE_REASONS`).
SESSION_CLOSED = Event("session_closed", "debug")
#: The protocol factory's ``buildProtocol`` returned ``None``: the session got
#: ``c[3003,"Connection refused"]``.
SESSION_REFUSED = Event("session_refused", "debug", "the protocol factory refused the session")
#: The protocol raised: in ``connectionMade``, while receiving a message (the session is
#: closed with 1011), or in ``connectionLost``. ``sockjs_method`` names the call; the
#: traceback is the event's ``log_failure``.
PROTOCOL_ERROR = Event("protocol_error", "error", "the protocol raised: {sockjs_error}")
#: The protocol factory's ``buildProtocol`` raised (the session is refused).
FACTORY_ERROR = Event("factory_error", "error", "buildProtocol raised: {sockjs_error}")
#: The protocol wrote bytes that are not UTF-8: the session is closed with 1007.
INVALID_UTF8 = Event(
    "invalid_utf8", "error", "the protocol wrote bytes that are not UTF-8: {sockjs_error}"
)
#: More than ``max_queued_bytes`` waited for a client that does not read: the session is
#: closed with 1008 and its queue dropped.
SEND_BUFFER_FULL = Event(
    "send_buffer_full", "info", "closing a session whose client does not read"
)
#: A websocket client answered no ping within a heartbeat: the connection is dropped.
LIVENESS_TIMEOUT = Event(
    "liveness_timeout", "info", "closing a websocket whose client answers no ping"
)
#: A cap refused a request or closed a session: ``sockjs_refusal`` says which (the
#: ``reason`` of ``sockjs_refusals_total``).
REFUSED = Event("refused", "debug", "{sockjs_message}")
#: ``twistd sockjs`` serves ``sockjs_url``: one event per URL at startup.
SERVING = Event("serving", "info", "{sockjs_what} at {sockjs_url}")
#: Anything else txsockjs says (the text of :meth:`SessionService.log` calls).
MESSAGE = Event("message", "info", "{sockjs_message}")

#: The events txsockjs emits, by name.
EVENTS = {
    event.name: event
    for event in (
        SESSION_OPENED,
        SESSION_CLOSED,
        SESSION_REFUSED,
        PROTOCOL_ERROR,
        FACTORY_ERROR,
        INVALID_UTF8,
        SEND_BUFFER_FULL,
        LIVENESS_TIMEOUT,
        REFUSED,
        SERVING,
        MESSAGE,
    )
}
#: The free-text events, by name and severity.
_FREE_TEXT_EVENTS = {
    (event.name, severity): dataclasses.replace(event, severity=severity)
    for event in (MESSAGE, REFUSED)
    for severity in LEVELS
}

#: The fields of an event's context, in the order its text shows them.
CONTEXT_FIELDS = ("sockjs_session", "sockjs_transport", "sockjs_peer")


def session_hash(key: bytes) -> str:
    """A short hash of a session id (8 hex digits), keyed per process."""
    return hashlib.blake2b(key, digest_size=4, key=_HASH_KEY).hexdigest()


def session_label(session: Session) -> str:
    """
    How events name ``session``: the hash of its id, or, for a websocket session (which has
    no id), the hash of the object's identity, prefixed with ``ws-``.
    """
    key = session._key
    if key is not None:
        return session_hash(key)
    return "ws-" + session_hash(id(session).to_bytes(8, "little"))


def peer_text(address: IAddress) -> str:
    """``host:port`` (``[host]:port`` for IPv6; the host alone without a port)."""
    if isinstance(address, IPv4Address):
        return f"{address.host}:{address.port}" if address.port else address.host
    if isinstance(address, IPv6Address):
        return f"[{address.host}]:{address.port}" if address.port else address.host
    if isinstance(address, UNIXAddress):
        return "unix:" + _unix_name(address)
    return repr(address)


def _unix_name(address: UNIXAddress) -> str:
    name: bytes | str | None = address.name
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    return name or ""


def session_context(session: Session) -> dict[str, str]:
    """The context fields of an event about ``session``."""
    info = session._info
    return {
        "sockjs_session": session_label(session),
        "sockjs_transport": info.transport_name,
        "sockjs_peer": peer_text(info.peer),
    }


def _format(event: Event, fields: dict[str, Any]) -> str:
    """``name key=value ...: text``, with the context fields and the other given ones."""
    key = (event, tuple(fields))
    line = _FORMATS.get(key)
    if line is None:
        if len(_FORMATS) > 1000:  # field names are few; never let a caller's grow it
            _FORMATS.clear()
        line = _FORMATS[key] = _make_format(event, fields)
    return line


#: Formats already made, by event and field names.
_FORMATS: dict[tuple[Event, tuple[str, ...]], str] = {}


def _make_format(event: Event, fields: dict[str, Any]) -> str:
    parts = [event.name]
    for name in CONTEXT_FIELDS:
        if name in fields:
            parts.append(f"{name[7:]}={{{name}}}")
    for name in fields:
        if name not in CONTEXT_FIELDS and name not in _FREE_TEXT and name.startswith("sockjs_"):
            parts.append(f"{name[7:]}={{{name}}}")
    line = " ".join(parts)
    if event.text:
        line += ": " + event.text
    return line


#: Fields said in an event's text rather than as ``key=value``.
_FREE_TEXT = frozenset(
    {"sockjs_message", "sockjs_error", "sockjs_event", "sockjs_what", "sockjs_url"}
)


def emit(
    event: Event,
    hook: Callable[[str, str], None] | None,
    failure: Failure | None = None,
    **fields: Any,
) -> None:
    """
    Emit ``event`` once through :mod:`twisted.logger` at its severity, and hand its line to
    ``hook`` (the ``log`` option) if there is one.

    :param failure: attached as the event's ``log_failure`` (its traceback); its error
        message is the ``sockjs_error`` field.
    :param fields: the event's fields, ``sockjs_`` names (see :data:`CONTEXT_FIELDS`).
    """
    logged = event.severity not in _unlogged
    if not logged and hook is None:
        return
    if failure is not None:
        kind = failure.type.__name__ if failure.type is not None else "Exception"
        fields.setdefault("sockjs_error", f"{kind}: {failure.getErrorMessage()}")
    log_format = _format(event, fields)
    fields["sockjs_event"] = event.name
    if logged:
        level = LEVELS[event.severity]
        if failure is not None:
            _log.failure(log_format, failure, level, **fields)
        else:
            _log.emit(level, log_format, **fields)
    if hook is not None:
        if event.text == "{sockjs_message}":
            # Free text: the hook gets the text alone, as it always has.
            hook(event.severity, fields["sockjs_message"])
        else:
            hook(event.severity, formatEvent(dict(fields, log_format=log_format)))


def emit_message(
    severity: str,
    message: str,
    hook: Callable[[str, str], None] | None,
    **fields: Any,
) -> None:
    """
    Emit a free-text event at ``severity``, with optional fields: ``refused`` when a
    ``sockjs_refusal`` field says which cap refused, ``message`` otherwise.
    """
    name = REFUSED.name if "sockjs_refusal" in fields else MESSAGE.name
    event = _FREE_TEXT_EVENTS.get((name, severity)) or _FREE_TEXT_EVENTS[(name, "info")]
    emit(event, hook, sockjs_message=message, **fields)


def base_url(address: IAddress, tls: bool = False) -> str:
    """
    The URL of a listening address, without a path: ``http://127.0.0.1:8080``,
    ``https://[::1]:8443``, or ``http+unix://%2Frun%2Fsockjs.sock`` for a UNIX socket.
    """
    scheme = "https" if tls else "http"
    if isinstance(address, IPv4Address):
        return f"{scheme}://{address.host}:{address.port}"
    if isinstance(address, IPv6Address):
        return f"{scheme}://[{address.host}]:{address.port}"
    if isinstance(address, UNIXAddress):
        return f"{scheme}+unix://{urllib.parse.quote(_unix_name(address), safe='')}"
    return f"{scheme}://{address!r}"


def log_serving(listening: Iterable[Any], paths: Sequence[tuple[str, str]]) -> None:
    """
    Once each of ``listening`` listens, log one ``serving`` event (info) per URL it serves.

    :param listening: the services ``strports.service`` made, started (their endpoint is
        listening or about to).
    :param paths: what is served and where, e.g. ``("SockJS service", "/echo")``,
        ``("demo page", "/")``.
    """
    for service in listening:
        # Twisted keeps the listening port only there (StreamServerEndpointService).
        waiting = getattr(service, "_waitingForPort", None)
        if waiting is None:
            continue
        endpoint = getattr(service, "endpoint", None)
        tls = "SSL" in type(endpoint).__name__ or "TLS" in type(endpoint).__name__

        def announce(port: Any, tls: bool = tls) -> Any:
            if port is None:
                return port  # it failed to listen: the service logged why
            base = base_url(port.getHost(), tls)
            for what, path in paths:
                emit(SERVING, None, sockjs_url=base + path, sockjs_what=what)
            return port

        waiting.addCallback(announce)


class ServingLog(Service):
    """
    A service that, started after the listening services ``listening``, logs the URLs they
    serve (see :func:`log_serving`): ``twistd sockjs`` adds one after its listeners.
    """

    def __init__(self, listening: Iterable[Any], paths: Sequence[tuple[str, str]]):
        self.listening = list(listening)
        self.paths = list(paths)

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        log_serving(self.listening, self.paths)
