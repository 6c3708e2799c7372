"""
The HTTP transports: receiving (xhr, xhr_streaming, eventsource, htmlfile, jsonp) and sending
(xhr_send, jsonp_send).

The five receiving transports differ only in what a :class:`Framing` describes: method,
content type, prelude, how a frame is wrapped, and whether the response streams. One
resource class and one receiver class serve them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, parse_qs
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from .._core.framing import (
    PayloadError,
    decode_payload,
    eventsource_data,
    script_string,
    valid_callback,
)
from .._core.options import SockJSOptions
from .._core.receiver import IReceiver
from .._core.service import SessionService
from .._core.session import Session
from .._policy.admission import (
    Verdict,
    admit,
    answer_late,
    refuse,
    refuse_late,
    refuse_origin,
    same_host,
    when_decided,
)
from .._tcp import no_delay
from .._twisted_adapter import request_gone, write_now
from .._web.leaf import SockJSLeaf
from .._web.lean import LeanChannel, LeanHandler
from .._web.prefix import mount_prefix
from .._web.request import BodyTooLarge, read_body
from .._web.responses import (
    HTML,
    JAVASCRIPT,
    NO_CACHE,
    TEXT_PLAIN,
    AnswerHead,
    cors,
    error,
    no_cache,
    not_found,
    set_jsessionid,
)


def session_id(request: Request) -> bytes:
    """The session id of a ``/<server>/<session>/<transport>`` URL."""
    return (request.prepath or [b"", b""])[-2]


def ids_within(request: Request, limit: int) -> bool:
    """
    Whether the server id and the session id of a ``/<server>/<session>/<transport>`` URL
    are both at most ``limit`` bytes long (``max_session_id_length``).
    """
    return all(len(part) <= limit for part in (request.prepath or [])[-3:-1])


@dataclasses.dataclass(frozen=True)
class Framing:
    """How one receiving transport frames its response."""

    #: The transport's name as sockjs-client names it.
    name: str
    method: bytes
    content_type: bytes
    #: Makes the bytes sent before the first frame, given the callback (or b"").
    prelude: Callable[[bytes], bytes]
    #: Wraps one frame, given the callback (or b"").
    wrap: Callable[[bytes, bytes], bytes]
    #: Whether the response stays open for more frames (else: one frame per response).
    streaming: bool
    #: Whether the request names a JavaScript callback (``c=`` or ``callback=``).
    needs_callback: bool = False
    #: Whether the answer carries CORS headers (and OPTIONS gets a preflight answer).
    cross_origin: bool = False
    #: Headers of every answer, besides the content type and the caching ones.
    headers: tuple[tuple[bytes, bytes], ...] = ()


def _no_prelude(callback: bytes) -> bytes:
    return b""


_HTMLFILE_PAGE = b"""<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.%s;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>"""


def _htmlfile_prelude(callback: bytes) -> bytes:
    page = _HTMLFILE_PAGE % callback
    # Old browsers render nothing until they have 1 KiB, so pad it.
    return page + b" " * max(0, 1024 - len(page)) + b"\r\n\r\n"


XHR_POLLING = Framing(
    name="xhr-polling",
    method=b"POST",
    content_type=JAVASCRIPT,
    prelude=_no_prelude,
    wrap=lambda frame, callback: frame + b"\n",
    streaming=False,
    cross_origin=True,
)
XHR_STREAMING = Framing(
    name="xhr-streaming",
    method=b"POST",
    content_type=JAVASCRIPT,
    prelude=lambda callback: b"h" * 2048 + b"\n",
    wrap=lambda frame, callback: frame + b"\n",
    streaming=True,
    cross_origin=True,
)
EVENTSOURCE = Framing(
    name="eventsource",
    method=b"GET",
    content_type=b"text/event-stream",
    prelude=lambda callback: b"\r\n",
    wrap=lambda frame, callback: eventsource_data(frame),
    streaming=True,
    cross_origin=True,
)
HTMLFILE = Framing(
    name="htmlfile",
    method=b"GET",
    content_type=HTML,
    prelude=_htmlfile_prelude,
    wrap=lambda frame, callback: b"<script>\np(" + script_string(frame) + b");\n</script>\r\n",
    streaming=True,
    needs_callback=True,
)
JSONP_POLLING = Framing(
    name="jsonp-polling",
    method=b"GET",
    content_type=JAVASCRIPT,
    prelude=_no_prelude,
    wrap=lambda frame, callback: b"/**/%s(%s);\r\n" % (callback, script_string(frame)),
    streaming=False,
    needs_callback=True,
    # Rosetta Flash hardening: no content sniffing of a script answer.
    headers=((b"X-Content-Type-Options", b"nosniff"),),
)


def _callback(request: Request) -> bytes | str:
    """The validated callback name, or the error text to answer with."""
    args = request.args or {}
    values = args.get(b"c") or args.get(b"callback") or [b""]
    name: bytes = values[0]
    if not name:
        return '"callback" parameter required'
    if not valid_callback(name.decode("latin-1")):
        return 'invalid "callback" parameter'
    return name


#: Channels whose transport a streamed frame may be written to directly.
_PLAIN_CHANNELS = (HTTPChannel, LeanChannel)


def _lean_allowed(options: SockJSOptions, headers: dict[bytes, bytes]) -> bool:
    """Whether a lean request's origin passes the origin policy (else: the ordinary path)."""
    policy = options.allowed_origins
    if not policy.restricted:
        return True
    origin = headers.get(b"origin")
    return origin is None or policy.allows(origin.decode("latin-1"))


def _lean_options(options: SockJSOptions) -> bool:
    """Whether the lean path may serve a service with these options."""
    return options.jsessionid is False and not options.bind_session_to_host


@implementer(IReceiver)
class LeanPollReceiver:
    """
    The receiver of an ``xhr`` or ``jsonp`` poll taken by the lean path: one frame, sent
    with the head built ahead of time and the end of the chunked body in one write.
    """

    __slots__ = ("_callback", "_channel", "_ended", "_head", "_session", "_wrap")

    def __init__(
        self,
        channel: LeanChannel,
        session: Session,
        head: bytes,
        wrap: Callable[[bytes, bytes], bytes],
        callback: bytes,
    ):
        self._channel = channel
        self._session = session
        self._head: bytes | None = head
        self._wrap = wrap
        self._callback = callback
        self._ended = False

    def send_frame(self, frame: bytes) -> bool:
        head = self._head
        if head is None or self._ended:
            return False
        self._head = None
        data = self._wrap(frame, self._callback)
        self._channel.lean_write(b"%s%x\r\n%s\r\n0\r\n\r\n" % (head, len(data), data))
        return False

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        head = self._head
        if head is not None:
            self._head = None
            self._channel.lean_write(head + b"0\r\n\r\n")
        self._channel.lean_done(self)

    def pause_reading(self, paused: bool) -> None:
        """HTTP receivers read nothing from the client."""

    def lost(self) -> None:
        """The connection went away before the frame."""
        if not self._ended:
            self._ended = True
            self._session.receiver_lost(self)


def _lean_callback(query: bytes) -> bytes | None:
    """
    The callback a query string names (``c=`` or ``callback=``), if it is a valid one and
    the query needs no decoding; else ``None`` (the ordinary path answers).
    """
    if not query or b"%" in query or b"+" in query or b";" in query:
        return None
    named: bytes | None = None
    for item in query.split(b"&"):
        name, equals, value = item.partition(b"=")
        if not equals:
            continue
        if name == b"c":
            named = value
            break
        if name == b"callback" and named is None:
            named = value
    if not named or not valid_callback(named.decode("latin-1")):
        return None
    return named


class _LeanSend:
    """A send taken by the lean path whose messages wait to be delivered."""

    __slots__ = ("_channel", "_gone", "_head")

    def __init__(self, channel: LeanChannel, head: bytes):
        self._channel = channel
        self._head = head
        self._gone = False

    def answer(self, result: object) -> None:
        if not self._gone:
            self._gone = True
            self._channel.lean_write(self._head)
            self._channel.lean_done(self)

    def lost(self) -> None:
        self._gone = True


@implementer(IReceiver, IPushProducer)
class HttpReceiver:
    """An HTTP response that frames are written to, one chunk per frame."""

    def __init__(
        self,
        request: Request,
        session: Session,
        framing: Framing,
        callback: bytes,
        response_limit: int,
    ):
        self._request = request
        self._session = session
        self._framing = framing
        self._callback = callback
        self._left = response_limit
        self._ended = False
        request.notifyFinish().addErrback(self._lost)
        request.registerProducer(self, True)
        no_delay(request.channel.transport)

    def send_frame(self, frame: bytes) -> bool:
        data = self._framing.wrap(frame, self._callback)
        if not self._framing.streaming:
            self._request.write(data)
            return False
        self._write_streamed(data)
        self._left -= len(data)
        return self._left > 0

    def _write_streamed(self, data: bytes) -> None:
        """
        One frame of a streaming response, as its own HTTP/1.1 chunk.

        Once the response has started, a frame on a plain HTTP/1.x connection goes to the
        socket at once when nothing is buffered (see ``write_now``) instead of waiting for
        the reactor's next writable event; anything else goes through ``Request.write``.
        """
        request = self._request
        channel = request.channel
        if request.startedWriting and type(channel) in _PLAIN_CHANNELS and not request.finished:
            request.sentLength += len(data)
            if request.chunked:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            write_now(channel.transport, data)
        else:
            request.write(data)

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._request.unregisterProducer()
            self._request.finish()

    def pause_reading(self, paused: bool) -> None:
        """HTTP receivers read nothing from the client."""

    def _lost(self, reason: Failure) -> None:
        if not self._ended:
            self._ended = True
            self._session.receiver_lost(self)

    # IPushProducer, toward the HTTP connection: a slow client pauses the session.
    def pauseProducing(self) -> None:
        self._session.receiver_paused(self, True)

    def resumeProducing(self) -> None:
        self._session.receiver_paused(self, False)

    def stopProducing(self) -> None:
        """The connection is going away; ``notifyFinish`` reports it."""


class ReceiveResource(SockJSLeaf):
    """``/<server>/<session>/<transport>`` of a receiving HTTP transport."""

    def __init__(self, service: SessionService, framing: Framing):
        super().__init__(service.options)
        self.service = service
        self.framing = framing
        self.methods = (framing.method,)
        if framing.cross_origin and framing.method == b"POST":
            self.preflight_methods = b"OPTIONS, POST"
        #: The lean path's handler (see :mod:`txsockjs._web.lean`), for xhr and jsonp polls.
        self.lean: LeanHandler | None = None
        if framing in (XHR_POLLING, JSONP_POLLING) and _lean_options(self.options):
            self._lean_head = AnswerHead(
                self.options,
                b"200 OK",
                b"Content-Type: %s\r\nCache-Control: %s\r\n" % (framing.content_type, NO_CACHE),
                b"".join(b"%s: %s\r\n" % header for header in framing.headers)
                + b"Transfer-Encoding: chunked\r\n",
                framing.cross_origin,
            )
            self.lean = self._lean

    def _lean(
        self,
        channel: LeanChannel,
        server_id: bytes,
        session_id: bytes,
        headers: dict[bytes, bytes],
        body: bytes,
        query: bytes,
    ) -> bool:
        """A poll of an existing session, on the lean path; ``False``: the ordinary one."""
        options = self.options
        limit = options.max_session_id_length
        if len(server_id) > limit or len(session_id) > limit:
            return False
        if not _lean_allowed(options, headers):
            return False
        framing = self.framing
        callback = b""
        if framing.needs_callback:
            found = _lean_callback(query)
            if found is None:
                return False
            callback = found
        session = self.service.get(session_id)
        if session is None:
            return False
        head = self._lean_head.build(headers)
        receiver = LeanPollReceiver(channel, session, head, framing.wrap, callback)
        channel.lean_wait(receiver)
        session.attach(receiver)
        return True

    def _prepare(self, request: Request, opening: bool) -> bytes | tuple[bytes, Session | None]:
        """
        What a ``GET`` (or ``POST``) and a ``HEAD`` share: the checks, the status and the
        headers. Returns the error answer, or the callback and the session (``None`` for a
        new one).

        :param opening: the request may open a session (else it is a ``HEAD``).
        """
        framing = self.framing
        options = self.options
        if not ids_within(request, options.max_session_id_length):
            return not_found(request)
        foreign = refuse_origin(request, self.service, count=opening)
        if foreign:
            return foreign
        callback = b""
        if framing.needs_callback:
            found = _callback(request)
            if isinstance(found, str):
                return error(request, 500, found)
            callback = found
        service = self.service
        session = service.get(session_id(request))
        if session is None:
            refused = service.refuse_new(request, opening)
            if refused is not None:
                return refused
        request.setHeader(b"Content-Type", framing.content_type)
        no_cache(request)
        set_jsessionid(request, options)
        if framing.cross_origin:
            cors(request, options)
        for name, value in framing.headers:
            request.setHeader(name, value)
        return callback, session

    def head(self, request: Request) -> bytes:
        """
        The status and headers a ``GET`` would get, and nothing else: no session is opened
        or touched, no prelude, frame or heartbeat is sent, so the connection stays ready
        for its next request.
        """
        answered = self._prepare(request, opening=False)
        if isinstance(answered, bytes):
            return answered
        return b""

    def handle(self, request: Request) -> bytes | int:
        answered = self._prepare(request, opening=True)
        if isinstance(answered, bytes):
            return answered
        callback, session = answered
        service = self.service
        if session is not None:
            if not same_host(session, request, service):
                return not_found(request)
            self._receive(request, callback, session, None)
            return NOT_DONE_YET
        # A new session: the authenticate hook (if any) decides first, maybe later.
        verdict = admit(request, service, mount_prefix(request, 3), self.framing.name)
        if isinstance(verdict, Deferred):
            when_decided(request, verdict, lambda late: self._admitted(request, callback, late))
            return NOT_DONE_YET
        if not verdict.admitted:
            return refuse(request, service, verdict)
        self._receive(request, callback, None, verdict.principal)
        return NOT_DONE_YET

    def _admitted(self, request: Request, callback: bytes, verdict: Verdict) -> None:
        """
        The hook decided after :meth:`handle` returned: what the request waited for may have
        changed meanwhile (another request opened the session, the service filled up).
        """
        service = self.service
        if not verdict.admitted:
            answer_late(request, refuse(request, service, verdict))
            return
        session = service.get(session_id(request))
        if session is None:
            refused = refuse_late(request, service)
            if refused:
                answer_late(request, refused)
                return
        elif not same_host(session, request, service):
            answer_late(request, not_found(request))
            return
        self._receive(request, callback, session, verdict.principal)

    def _receive(
        self, request: Request, callback: bytes, session: Session | None, principal: object
    ) -> None:
        """Attach the request to its session, opened now if ``None``."""
        framing = self.framing
        service = self.service
        prelude = framing.prelude(callback)
        if prelude:
            request.write(prelude)
        is_new = session is None
        if session is None:
            key = session_id(request)
            session = service.open(request, mount_prefix(request, 3), framing.name, key)
            session.principal = principal
        limit = self.options.response_limit
        session.attach(HttpReceiver(request, session, framing, callback, limit))
        if is_new:
            service.start(session)


XHR_SEND_NAME = "xhr_send"
JSONP_SEND_NAME = "jsonp_send"


class SendResource(SockJSLeaf):
    """``xhr_send`` and ``jsonp_send``: messages from the client into a session."""

    methods = (b"POST",)

    def __init__(self, service: SessionService, name: str):
        super().__init__(service.options)
        self.service = service
        self.name = name
        if name == XHR_SEND_NAME:
            self.preflight_methods = b"OPTIONS, POST"
        #: The lean path's handler (see :mod:`txsockjs._web.lean`).
        self.lean: LeanHandler | None = None
        options = self.options
        if _lean_options(options):
            before = b"Cache-Control: %s\r\n" % NO_CACHE
            after = b"Content-Type: %s\r\n" % TEXT_PLAIN
            if name == XHR_SEND_NAME:
                status, ok, late, cross_origin = (
                    b"204 No Content",
                    b"Content-Length: 0\r\n",
                    b"",
                    True,
                )
                self._lean_ok_body = self._lean_late_body = b""
            else:
                status, ok, late, cross_origin = (
                    b"200 OK",
                    b"Content-Length: 2\r\n",
                    b"Transfer-Encoding: chunked\r\n",
                    False,
                )
                self._lean_ok_body = b"ok"
                self._lean_late_body = b"2\r\nok\r\n0\r\n\r\n"
            self._lean_ok = AnswerHead(options, status, before, after + ok, cross_origin)
            self._lean_late = AnswerHead(options, status, before, after + late, cross_origin)
            self.lean = self._lean

    def _lean(
        self,
        channel: LeanChannel,
        server_id: bytes,
        session_id: bytes,
        headers: dict[bytes, bytes],
        body: bytes,
        query: bytes,
    ) -> bool:
        """A send to an existing session, on the lean path; ``False``: the ordinary one."""
        options = self.options
        if not _lean_allowed(options, headers) or len(body) > options.max_message_bytes:
            return False
        service = self.service
        session = service.get(session_id)
        if session is None:
            return False
        try:
            messages = decode_payload(self._payload(body, headers.get(b"content-type")))
        except PayloadError:
            return False
        if service.send_refusable(session):
            return False
        waiting = service.receive_batched(session, messages)
        if waiting is None:
            channel.lean_write(self._lean_ok.build(headers) + self._lean_ok_body)
            return True
        service.send_waits(session, waiting)
        pending = _LeanSend(channel, self._lean_late.build(headers) + self._lean_late_body)
        channel.lean_wait(pending)
        waiting.addCallback(pending.answer)
        return True

    def _payload(self, body: bytes, content_type: bytes | None) -> bytes:
        """The payload of a send: the body, or for a form-encoded jsonp_send its ``d``."""
        if self.name == JSONP_SEND_NAME and (content_type or b"").lower().startswith(
            b"application/x-www-form-urlencoded"
        ):
            values: list[bytes] = parse_qs(body, 1).get(b"d") or [b""]
            return values[0]
        return body

    def handle(self, request: Request) -> bytes | int:
        options = self.options
        foreign = refuse_origin(request, self.service)
        if foreign:
            return foreign
        session = self.service.get(session_id(request))
        if session is None or not same_host(session, request, self.service):
            return not_found(request)
        no_cache(request)
        set_jsessionid(request, options)
        if self.name == XHR_SEND_NAME:
            cors(request, options)
        try:
            body = read_body(request, options.max_message_bytes)
            messages = decode_payload(self._payload(body, request.getHeader(b"content-type")))
        except BodyTooLarge:
            return error(request, 413, "Payload too large.")
        except PayloadError as reason:
            return error(request, 500, str(reason))
        service = self.service
        refused = service.refuse_send(session)
        if refused is not None:
            return error(request, 503, refused)
        waiting = service.receive_batched(session, messages)
        if waiting is None:
            return self._ok(request)
        service.send_waits(session, waiting)
        waiting.addCallback(lambda _: self._finish(request))
        return NOT_DONE_YET

    def _ok(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", TEXT_PLAIN)
        if self.name == XHR_SEND_NAME:
            request.setResponseCode(204)
            return b""
        return b"ok"

    def _finish(self, request: Request) -> None:
        if not request.finished and not request_gone(request):
            request.write(self._ok(request))
            request.finish()
